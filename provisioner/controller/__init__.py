"""The generic controller: which claims and volumes to act on, dispatch through the
backend contract (``contract``), events, retries, log context.

Knows nothing of Gluster or Heketi (an import-linter contract keeps
``heketi_client`` and ``provisioner.gluster`` out); imports ``provisioner.k8s``,
``provisioner.config`` and ``provisioner.observability``.
"""

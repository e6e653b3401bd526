"""``heketi-provisioner audit``: compare Heketi with Kubernetes, read-only.

``command`` is the command line, ``compare`` gathers both sides and classifies,
``report`` holds the findings and renders them. Imports ``provisioner.gluster``
(parameters, credentials, clients, PV reading) and the layers below it.
"""

"""Talking to Kubernetes: the API gateway and its errors, informers, the work queue,
leader election, events, quantities and server versions.

Knows nothing of claims as work, of backends or of Gluster; imports only
``provisioner.config`` and ``provisioner.observability`` from this project.
"""

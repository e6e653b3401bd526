"""The node bed: a one-node Kubernetes 1.25.16 cluster on this machine, for pods.

kubelet, kube-scheduler and kube-proxy v1.25.16 (built by ``testbeds/peers/build``,
peer set ``k8s-1.25-node``) on Debian's containerd and runc, a CNI bridge with
host-local IPAM, beside the peers' etcd, kube-apiserver (Node and RBAC authorizers,
NodeRestriction) and kube-controller-manager. Every image is built here
(``images.py``: pause, busybox, a Python base and OUR image from the Dockerfile).

Entry points: ``start_node(peers, workdir)`` (context manager -> ``Node``),
``preflight()`` (raises ``NodeUnavailable``), ``images.build_all()``,
``cleanup.clean()`` / ``cleanup.leftovers()``; by hand,
``python -m testbeds.node images|up|down|status``. See README.md beside this file.
"""

from .bed import Node, NodeUnavailable, preflight, start_node
from .components import NODE_NAME
from .network import Ranges

__all__ = ["NODE_NAME", "Node", "NodeUnavailable", "Ranges", "preflight", "start_node"]

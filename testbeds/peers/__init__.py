"""The real peers of the test tiers: etcd, kube-apiserver and kube-controller-manager
(1.25.16 and a current release) and Heketi (mock executor unless a bed says
otherwise), built from their pinned Go modules by ``testbeds/peers/build`` and started
here on loopback, each with free ports and its own work directory.

Entry points (context managers; each stops what it started, in reverse order):
``find_peers()``, ``start_etcd``, ``start_kube``, ``start_heketi``. Nothing sleeps to
synchronise: every start polls a readiness endpoint until a deadline and fails with
the tail of the peer's log. ``python -m testbeds.peers up|down`` runs a stack by hand.
"""

from ..harness.processes import PeerFailed, Process, free_port, local_get, running, wait_for
from .binaries import BUILD_SCRIPT, KUBE_VERSIONS, REPO, Peers, PeersNotBuilt, find_peers
from .heketi import (
    BLOCK_HOSTING_GIB,
    HEKETI_ADMIN_KEY,
    HEKETI_USER_KEY,
    RealHeketi,
    default_topology,
    heketi_token,
    start_heketi,
)
from .kube import (
    AUDIT_POLICY,
    ISSUER,
    SERVICE_CIDR,
    Etcd,
    RealKube,
    audit_writes,
    restart_controller_manager,
    start_controller_manager,
    start_etcd,
    start_kube,
    stop_controller_manager,
)
from .pki import Pki, issue_leaf, make_pki, node_leaves, write_kubeconfig

__all__ = [
    "AUDIT_POLICY",
    "BLOCK_HOSTING_GIB",
    "BUILD_SCRIPT",
    "HEKETI_ADMIN_KEY",
    "HEKETI_USER_KEY",
    "ISSUER",
    "KUBE_VERSIONS",
    "REPO",
    "SERVICE_CIDR",
    "Etcd",
    "PeerFailed",
    "Peers",
    "PeersNotBuilt",
    "Pki",
    "Process",
    "RealHeketi",
    "RealKube",
    "audit_writes",
    "default_topology",
    "find_peers",
    "free_port",
    "heketi_token",
    "issue_leaf",
    "local_get",
    "make_pki",
    "node_leaves",
    "restart_controller_manager",
    "running",
    "start_controller_manager",
    "start_etcd",
    "start_heketi",
    "start_kube",
    "stop_controller_manager",
    "wait_for",
    "write_kubeconfig",
]

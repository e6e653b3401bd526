"""The glusterfs version gate: no PV the kubelets cannot mount.

The in-tree glusterfs volume plugin (the kubelet side that mounts ``spec.glusterfs``)
was removed in 1.26: on a newer cluster such a PV binds but never mounts, so nothing
is handed out there unless the operator says the nodes can still mount glusterfs
(``--assume-glusterfs-plugin``). The controller asks the gate once per claim and
turns its answer into one Warning on the claim.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog

from provisioner.gluster.parameters import PV_TYPE_NFS
from provisioner.k8s.versions import ServerVersion

__all__ = ["LAST_GLUSTERFS_MINOR", "GlusterfsGate", "glusterfs_mountable", "writes_nfs"]

log = structlog.get_logger(__name__)

LAST_GLUSTERFS_MINOR = 25  # 1.25 is the last release with the glusterfs plugin


def glusterfs_mountable(version: tuple[int, int]) -> bool:
    """True when kubelets of this version still mount ``spec.glusterfs`` volumes."""
    return version <= (1, LAST_GLUSTERFS_MINOR)


def writes_nfs(storage_class: dict[str, Any]) -> bool:
    """Whether the class asks for NFS PVs (``pvtype: nfs``), read leniently: a class
    whose other parameters are bad is still not gated, so its claims get the event
    that names the bad parameter rather than the version warning."""
    parameters = storage_class.get("parameters") or {}
    for key, value in parameters.items():
        if str(key).lower() == "pvtype" and isinstance(value, str):
            return value.strip().lower() == PV_TYPE_NFS
    return False


class GlusterfsGate:
    """Closed on 1.26+ unless ``assume_plugin``; logs once when it first closes."""

    def __init__(self, *, assume_plugin: bool = False) -> None:
        self.assume_plugin = assume_plugin
        self._lock = threading.Lock()
        self._announced = False

    def message(self, storage_class: dict[str, Any], server: ServerVersion) -> str | None:
        """Why claims of ``storage_class`` are not provisioned on ``server``; None: go on.

        A ``pvtype: nfs`` class writes NFS PVs, which every kubelet mounts: never gated.
        Every other class makes glusterfs PVs, so the answer depends on the server only.
        """
        if self.assume_plugin or glusterfs_mountable(server.release):
            return None
        if writes_nfs(storage_class):
            return None
        with self._lock:
            first, self._announced = not self._announced, True
        if first:
            log.warning("version_gate.closed", server_version=server.git_version)
        return (
            f"Not provisioning: this cluster runs Kubernetes {server.git_version}, and "
            f"kubelets of 1.26 and later cannot mount glusterfs volumes (the in-tree "
            f"plugin was removed), so the volume could never be used. If your nodes "
            f"can still mount glusterfs, restart the provisioner with "
            f"--assume-glusterfs-plugin."
        )

"""Kubernetes server versions, and whether their kubelets can mount our PVs.

The in-tree glusterfs volume plugin (the kubelet side that mounts ``spec.glusterfs``)
was removed in 1.26: on a newer cluster such a PV binds but never mounts, so the
provisioner must know the server version before handing any out.
"""

from __future__ import annotations

import re

__all__ = ["LAST_GLUSTERFS_MINOR", "VersionError", "glusterfs_mountable", "parse_kube_version"]

LAST_GLUSTERFS_MINOR = 25  # 1.25 is the last release with the glusterfs plugin

# gitVersion is "v<major>.<minor>.<patch>" plus optional pre-release/build parts
# such as "-gke.100", "+k3s1" or "-rc.0"; "v" is optional for robustness.
_GIT_VERSION = re.compile(r"v?(?P<major>[0-9]+)\.(?P<minor>[0-9]+)(?:\.[0-9]+)?(?:[-+].*)?")


class VersionError(ValueError):
    """The server reported a version string we cannot read."""


def parse_kube_version(git_version: str) -> tuple[int, int]:
    """``"v1.27.3-gke.100"`` → ``(1, 27)``."""
    text = git_version.strip() if isinstance(git_version, str) else ""
    match = _GIT_VERSION.fullmatch(text)
    if match is None:
        shown = str(git_version)[:64]
        raise VersionError(f'cannot read Kubernetes version "{shown}" (expected e.g. "v1.30.2")')
    return int(match["major"]), int(match["minor"])


def glusterfs_mountable(version: tuple[int, int]) -> bool:
    """True when kubelets of this version still mount ``spec.glusterfs`` volumes."""
    return version <= (1, LAST_GLUSTERFS_MINOR)

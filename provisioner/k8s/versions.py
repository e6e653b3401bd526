"""Kubernetes server versions, as ``/version`` reports them.

Read once at start: a backend may decide by it what it can hand out (glusterfs PVs
cannot be mounted by the kubelets of 1.26 and later; see ``provisioner.gluster.gate``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ServerVersion", "VersionError", "parse_kube_version"]

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


@dataclass(frozen=True)
class ServerVersion:
    """The API server's ``gitVersion`` as reported, and its (major, minor)."""

    git_version: str
    release: tuple[int, int]

    @classmethod
    def parse(cls, git_version: str) -> ServerVersion:
        """Raises ``VersionError`` when ``git_version`` cannot be read."""
        return cls(git_version, parse_kube_version(git_version))

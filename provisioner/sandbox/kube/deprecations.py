"""The deprecation warnings the real registry returns (``Warning: 299 - "..."``) on a
write of a PersistentVolume or PersistentVolumeClaim.

Checked against kube-apiserver 1.25.16 (none of these) and 1.37.2 (all of them);
the sandbox gives them from 1.28 on (mount-options from 1.31, when it was deprecated).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
SINCE = (1, 28)
_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"
_BETA_MOUNT = "volume.beta.kubernetes.io/mount-options"
# PV source field → (deprecated in, non-functional in), in the real server's order
_PLUGINS = (
    ("cephfs", "v1.28", "v1.31"),
    ("photonPersistentDisk", "v1.11", "v1.16"),
    ("scaleIO", "v1.16", "v1.22"),
    ("storageOS", "v1.22", "v1.25"),
    ("glusterfs", "v1.25", "v1.26"),
    ("rbd", "v1.28", "v1.31"),
)


def release(version: str) -> tuple[int, int]:
    """'1.37.2' → (1, 37); unparsable → (1, 25), the oldest the sandbox plays."""
    parts = version.lstrip("v").split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (1, 25)


def _annotation(key: str, message: str) -> str:
    return f"metadata.annotations[{key}]: {message}"


def warnings(plural: str, obj: Obj, release: tuple[int, int]) -> list[str]:
    if release < SINCE:
        return []
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    spec = obj.get("spec") or {}
    found: list[str] = []
    if _BETA_CLASS in annotations and plural in ("persistentvolumes", "persistentvolumeclaims"):
        found.append(
            _annotation(
                _BETA_CLASS, 'deprecated since v1.8; use "storageClassName" attribute instead'
            )
        )
    if plural != "persistentvolumes":
        return found
    if _BETA_MOUNT in annotations and release >= (1, 31):
        found.append(
            _annotation(_BETA_MOUNT, 'deprecated since v1.31; use "mountOptions" attribute instead')
        )
    if spec.get("persistentVolumeReclaimPolicy") == "Recycle":
        found.append(
            "spec.persistentVolumeReclaimPolicy: The Recycle reclaim policy is deprecated. "
            "Instead, the recommended approach is to use dynamic provisioning."
        )
    for source, deprecated, broken in _PLUGINS:
        if spec.get(source) is not None:
            found.append(f"spec.{source}: deprecated in {deprecated}, non-functional in {broken}+")
    return found

"""Admission plugins that run synchronously on create, as in kube-apiserver.

- DefaultStorageClass: a claim with neither ``spec.storageClassName`` nor the beta
  annotation gets the default class (``storageclass.kubernetes.io/is-default-class:
  "true"``; with several defaults the newest wins, as since Kubernetes 1.26).
- StorageObjectInUseProtection: claims get ``kubernetes.io/pvc-protection`` and volumes
  ``kubernetes.io/pv-protection``; the control-plane emulation removes them when safe.
- PersistentVolumeClaimResize (on update, after validation): a larger storage request
  of a bound claim is refused with 403 unless the claim's class exists and sets
  ``allowVolumeExpansion: true`` (message as kube-apiserver 1.25 and 1.37 word it;
  tests/real/test_resize_clone.py compares).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .status import ApiError
from .store import Store
from .validation import parse_quantity

Obj = dict[str, Any]

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
BETA_DEFAULT_CLASS_ANNOTATION = "storageclass.beta.kubernetes.io/is-default-class"
BETA_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
PVC_PROTECTION = "kubernetes.io/pvc-protection"
PV_PROTECTION = "kubernetes.io/pv-protection"


def default_class(store: Store) -> str | None:
    _, entries = store.snapshot("storageclasses")
    defaults = []
    for entry in entries:
        annotations = entry.obj["metadata"].get("annotations") or {}
        if "true" in (
            annotations.get(DEFAULT_CLASS_ANNOTATION),
            annotations.get(BETA_DEFAULT_CLASS_ANNOTATION),
        ):
            meta = entry.obj["metadata"]
            defaults.append((meta.get("creationTimestamp", ""), meta["name"]))
    if not defaults:
        return None
    # Newest wins; ties (same second) broken by name, like the real plugin's sort.
    defaults.sort(key=lambda d: (d[0], d[1]))
    return str(defaults[-1][1])


def _add_finalizer(obj: Obj, finalizer: str) -> None:
    finalizers = list(obj["metadata"].get("finalizers") or [])
    if finalizer not in finalizers:
        finalizers.append(finalizer)
    obj["metadata"]["finalizers"] = finalizers


def admit_create(store: Store, plural: str, obj: Obj) -> None:
    if plural == "persistentvolumeclaims":
        spec = obj.setdefault("spec", {})
        annotations = obj["metadata"].get("annotations") or {}
        if spec.get("storageClassName") is None and BETA_CLASS_ANNOTATION not in annotations:
            name = default_class(store)
            if name is not None:
                spec["storageClassName"] = name
        _add_finalizer(obj, PVC_PROTECTION)
    elif plural == "persistentvolumes":
        _add_finalizer(obj, PV_PROTECTION)


RESIZE_FORBIDDEN = (
    "only dynamically provisioned pvc can be resized and the storageclass that "
    "provisions the pvc must support resize"
)


def _requested(obj: Obj) -> Decimal | None:
    spec = obj.get("spec") or {}
    return parse_quantity(((spec.get("resources") or {}).get("requests") or {}).get("storage"))


def admit_update(store: Store, plural: str, old: Obj, new: Obj) -> None:
    """Validating admission of an update (main resource only, never ``/status``)."""
    if plural != "persistentvolumeclaims":
        return
    before, after = _requested(old), _requested(new)
    if before is None or after is None or after <= before:
        return
    annotations = new["metadata"].get("annotations") or {}
    class_name = annotations.get(BETA_CLASS_ANNOTATION) or (new.get("spec") or {}).get(
        "storageClassName"
    )
    storage_class = store.get("storageclasses", "", class_name) if class_name else None
    if storage_class is None or storage_class.get("allowVolumeExpansion") is not True:
        name = new["metadata"]["name"]
        raise ApiError(
            403,
            f'persistentvolumeclaims "{name}" is forbidden: {RESIZE_FORBIDDEN}',
            details={"name": name, "kind": "persistentvolumeclaims"},
        )

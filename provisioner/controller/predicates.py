"""Which claims and volumes the controller acts on: pure functions of raw objects.

Kept apart from the loop so that every rule can be read and tested as a table,
and so that a mistake here (acting on someone else's volume) is easy to see.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from fractions import Fraction
from typing import Any

from provisioner.controller.keys import (
    ANN_BETA_STORAGE_CLASS,
    ANN_BETA_STORAGE_PROVISIONER,
    ANN_PROVISIONED_BY,
    ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER,
    FINALIZER,
)
from provisioner.k8s.quantity import QuantityError, parse_quantity

Obj = dict[str, Any]
Names = str | Collection[str]
"""One provisioner name, or the several one controller serves (``backends``)."""


def _serves(names: Names, name: object) -> bool:
    if isinstance(names, str):
        return name == names
    return isinstance(name, str) and name in names


class ClaimVerdict(enum.Enum):
    PROVISION = "provision"
    IGNORE = "ignore"  # not ours, already bound, or being deleted
    WAIT_FOR_CONSUMER = "wait-for-consumer"  # WaitForFirstConsumer, no node chosen yet


class VolumeAction(enum.Enum):
    NONE = "none"
    DELETE = "delete"  # backend (and what it keeps beside), finalizer, then the PV
    RELEASE_FINALIZER = "release-finalizer"  # Retain PV deleted by a user: keep the backend


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _annotations(obj: Obj) -> dict[str, str]:
    return _meta(obj).get("annotations") or {}


def class_name_of(obj: Obj) -> str | None:
    """The StorageClass of a claim or a PV, read as Kubernetes itself reads it: the
    beta annotation ``volume.beta.kubernetes.io/storage-class`` first, then
    ``spec.storageClassName``. Old objects carry only the annotation; reading the
    field alone would file their GIDs under no class (and hand them out again) and
    lose the class a delete needs.

    An empty string means "no class" (static binding only), so it yields ``None``;
    an unset field with no annotation also yields ``None`` (the default-class
    admission plugin fills the field in before we see the claim).
    """
    annotations = _annotations(obj)
    if ANN_BETA_STORAGE_CLASS in annotations:
        return annotations[ANN_BETA_STORAGE_CLASS] or None
    return (obj.get("spec") or {}).get("storageClassName") or None


def claim_provisioner(claim: Obj) -> str | None:
    annotations = _annotations(claim)
    return annotations.get(ANN_STORAGE_PROVISIONER) or annotations.get(ANN_BETA_STORAGE_PROVISIONER)


def should_provision(
    claim: Obj,
    storage_class: Obj | None,
    provisioner_name: Names,
    *,
    annotation_required: bool = True,
) -> ClaimVerdict:
    """DESIGN.md flow step 2.

    The storage-provisioner annotation is required as well as the class: the PV
    controller sets it only once it has decided the claim needs dynamic
    provisioning, which keeps us off claims it is about to bind statically. Taking
    over an in-tree plugin the server no longer has (``annotation_required=False``),
    the PV controller never sets it: the class alone decides.
    Selectors and other invalid claims are *not* filtered here: they are ours,
    and the provisioner's validation turns them into a Warning event.
    """
    if (claim.get("spec") or {}).get("volumeName"):
        return ClaimVerdict.IGNORE
    if _meta(claim).get("deletionTimestamp"):
        return ClaimVerdict.IGNORE
    if storage_class is None or not _serves(provisioner_name, storage_class.get("provisioner")):
        return ClaimVerdict.IGNORE
    if annotation_required and claim_provisioner(claim) != storage_class.get("provisioner"):
        return ClaimVerdict.IGNORE
    if storage_class.get("volumeBindingMode") == "WaitForFirstConsumer" and not _annotations(
        claim
    ).get(ANN_SELECTED_NODE):
        return ClaimVerdict.WAIT_FOR_CONSUMER
    return ClaimVerdict.PROVISION


def provisioned_by(pv: Obj, provisioner_name: Names) -> bool:
    return _serves(provisioner_name, _annotations(pv).get(ANN_PROVISIONED_BY))


def claim_ref_matches(pv: Obj, claim: Obj | None) -> bool:
    """The claim this PV was made for still exists (same uid, not a namesake)."""
    if claim is None:
        return False
    ref = (pv.get("spec") or {}).get("claimRef") or {}
    return bool(ref.get("uid")) and ref.get("uid") == _meta(claim).get("uid")


def should_delete(
    pv: Obj,
    provisioner_name: Names,
    *,
    claim: Obj | None = None,
    failed_is_released: bool = False,
) -> VolumeAction:
    """What to do with a PV we may own; ``claim`` is the cached claim its claimRef names.

    Released + reclaim Delete is the ordinary path.  A PV a user deleted directly
    (deletionTimestamp set, our finalizer still on it) is handled once its claim
    is gone or it is no longer Bound; while a live claim still uses it we wait,
    as Kubernetes' own pv-protection finalizer does.  Retain volumes keep their
    backend, but a user-deleted one must not hang on our finalizer forever.
    ``failed_is_released``: the PV controller has no plugin for our name and marks
    a PV whose claim went Failed instead of Released; without this such PVs and
    their volumes would stay for ever. Only while no claim with its uid exists.
    """
    if not provisioned_by(pv, provisioner_name):
        return VolumeAction.NONE
    spec = pv.get("spec") or {}
    meta = _meta(pv)
    phase = (pv.get("status") or {}).get("phase")
    reclaim = spec.get("persistentVolumeReclaimPolicy") or "Delete"
    being_deleted = bool(meta.get("deletionTimestamp"))
    has_finalizer = FINALIZER in (meta.get("finalizers") or [])
    in_use = phase == "Bound" and claim_ref_matches(pv, claim)

    if reclaim != "Delete":
        if being_deleted and has_finalizer and not in_use:
            return VolumeAction.RELEASE_FINALIZER
        return VolumeAction.NONE
    if phase == "Released":
        return VolumeAction.DELETE
    if phase == "Failed" and failed_is_released and not claim_ref_matches(pv, claim):
        return VolumeAction.DELETE
    if being_deleted and has_finalizer and not in_use:
        return VolumeAction.DELETE
    return VolumeAction.NONE


def should_repair(
    pv: Obj, provisioner_name: Names, *, watched_key: str | None, all_present: bool
) -> bool:
    """A bound PV of ours whose watched objects (``watched_key``: the backend's name for
    them, None if it has none) are not all there cannot be mounted again."""
    if not provisioned_by(pv, provisioner_name):
        return False
    if (pv.get("status") or {}).get("phase") != "Bound":
        return False
    if _meta(pv).get("deletionTimestamp") or watched_key is None:
        return False
    return not all_present


class ResizeStep(enum.Enum):
    NONE = "none"
    EXPAND = "expand"  # the request exceeds the PV's capacity: grow the backend volume
    FINISH = "finish"  # the PV is large enough; the claim's status does not say so yet


RESIZE_CONDITIONS = ("Resizing", "FileSystemResizePending", "ControllerResizeError")
"""Claim conditions of a resize in progress; cleared once it is done (no node step)."""


def _bytes(value: Any) -> Fraction | None:
    try:
        return parse_quantity(value) if isinstance(value, (str, int)) else None
    except QuantityError:
        return None


def resize_step(
    claim: Obj, pv: Obj | None, storage_class: Obj | None, provisioner_name: Names
) -> ResizeStep:
    """What growing a bound claim needs, from the claim, its PV and its class.

    Only claims bound to a PV we provisioned (claimRef uid = the claim's uid; adopted
    in-tree PVs included when we serve their name) in a class of ours that sets
    ``allowVolumeExpansion: true``. Fields read (keep them in slimmed caches): of the
    claim ``spec.volumeName``, ``spec.resources.requests.storage``,
    ``status.phase``, ``status.capacity.storage``, ``status.conditions[].type``,
    ``metadata.uid``, ``metadata.deletionTimestamp``; of the PV
    ``spec.capacity.storage``, ``spec.claimRef.uid``, the provisioned-by annotation;
    of the class ``allowVolumeExpansion`` and ``provisioner``.
    """
    spec = claim.get("spec") or {}
    status = claim.get("status") or {}
    if not spec.get("volumeName") or status.get("phase") != "Bound":
        return ResizeStep.NONE
    if _meta(claim).get("deletionTimestamp") or pv is None or storage_class is None:
        return ResizeStep.NONE
    if not _serves(provisioner_name, storage_class.get("provisioner")):
        return ResizeStep.NONE
    if storage_class.get("allowVolumeExpansion") is not True:
        return ResizeStep.NONE
    if not provisioned_by(pv, provisioner_name) or not claim_ref_matches(pv, claim):
        return ResizeStep.NONE
    requested = _bytes(((spec.get("resources") or {}).get("requests") or {}).get("storage"))
    capacity = _bytes(((pv.get("spec") or {}).get("capacity") or {}).get("storage"))
    if requested is None or capacity is None:
        return ResizeStep.NONE
    if requested > capacity:
        return ResizeStep.EXPAND
    shown = _bytes((status.get("capacity") or {}).get("storage"))
    pending = any(
        (c or {}).get("type") in RESIZE_CONDITIONS for c in status.get("conditions") or ()
    )
    if (shown is not None and shown < capacity) or pending:
        return ResizeStep.FINISH
    return ResizeStep.NONE

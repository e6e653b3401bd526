"""Which PV a claim's ``dataSource`` may be cloned from: checks on cached objects.

A clone copies data, so the question "which volume?" is a trust question. The claim
and its ``dataSource`` are tenant-written; so is the source claim. What decides is the
source claim's PV, which only admins (and provisioners) write: it must be one we
provisioned, in the same StorageClass, and its ``claimRef`` uid must be the source
claim's uid. A tenant who names a claim of another namespace, points a claim of
theirs at someone else's PV through ``spec.volumeName``, or names a claim bound to an
operator's static PV, gets a refusal and no backend call.

Refusals that only a change to the claim can cure wait for that change; those that
may cure themselves (the source is not bound yet, or its PV is not cached yet) are
retried with backoff.

Fields read: of the claim ``spec.dataSource``, ``spec.dataSourceRef``,
``spec.resources.requests.storage``; of the source claim ``metadata.uid``,
``metadata.deletionTimestamp``, the class (``spec.storageClassName`` or the beta
annotation), ``spec.volumeName``, ``status.phase``; of its PV the provisioned-by
annotation, ``spec.claimRef.uid``, the class, ``spec.capacity.storage``,
``status.phase``, ``metadata.deletionTimestamp``.
"""

from __future__ import annotations

from typing import Any

from provisioner.controller.contract import InvalidInput, Outcome
from provisioner.controller.predicates import claim_ref_matches, class_name_of, provisioned_by
from provisioner.k8s.informer import Lookup
from provisioner.k8s.quantity import QuantityError, parse_quantity

__all__ = ["SOURCE_CLAIM", "clone_source", "data_source"]

Obj = dict[str, Any]

SOURCE_CLAIM = "PersistentVolumeClaim"
_SNAPSHOT_KINDS = ("VolumeSnapshot",)


def data_source(claim: Obj) -> tuple[str, Obj] | None:
    """(field, reference) of the claim's data source, or None when it has none.

    ``dataSourceRef`` wins: the API server keeps both equal when both are set, and
    only ``dataSourceRef`` may name another namespace or a non-core kind.
    """
    spec = claim.get("spec") or {}
    for field in ("dataSourceRef", "dataSource"):
        ref = spec.get(field)
        if isinstance(ref, dict) and ref:
            return f"spec.{field}", ref
    return None


def _refuse(message: str, *, retry: bool = False) -> InvalidInput:
    return InvalidInput(message, outcome=Outcome.RETRY if retry else Outcome.WAIT_FOR_CHANGE)


def _storage(obj: Obj, *path: str) -> Any:
    node: Any = obj
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    return node


def clone_source(
    claim: Obj, storage_class: Obj, *, claims: Lookup, pvs: Lookup, provisioner_name: str
) -> Obj:
    """The PV to clone for ``claim``, or ``InvalidInput`` saying why not."""
    found = data_source(claim)
    assert found is not None, "only called for claims with a data source"
    field, ref = found
    kind = str(ref.get("kind") or "")[:64]
    group = str(ref.get("apiGroup") or "")[:64]
    if kind in _SNAPSHOT_KINDS:
        raise _refuse(
            f"{field}: restoring from a {kind} is not supported: Heketi has no snapshot "
            "API; to copy a volume, name its PersistentVolumeClaim as the data source"
        )
    if kind != SOURCE_CLAIM or group:
        shown = f"{group}/{kind}" if group else kind
        raise _refuse(
            f"{field}: {shown or '(no kind)'} is not supported; only a "
            "PersistentVolumeClaim can be cloned"
        )
    meta = claim.get("metadata") or {}
    namespace = meta.get("namespace")
    if ref.get("namespace") not in (None, "", namespace):
        raise _refuse(
            f"{field}.namespace: cloning a claim of another namespace is not supported "
            f"(the source must be in {namespace})"
        )
    name = ref.get("name")
    if not isinstance(name, str) or not name:
        raise _refuse(f"{field}.name: the source claim's name is required")
    where = f"{namespace}/{name[:253]}"
    source = claims.get(f"{namespace}/{name}")
    if source is None:
        raise _refuse(f"{field}: source claim {where} does not exist", retry=True)
    if (source.get("metadata") or {}).get("deletionTimestamp"):
        raise _refuse(f"{field}: source claim {where} is being deleted")
    class_name = (storage_class.get("metadata") or {}).get("name")
    source_class = class_name_of(source)
    if source_class != class_name:
        raise _refuse(
            f"{field}: source claim {where} is in StorageClass {source_class or '(none)'}, "
            f"not {class_name}; a volume can only be cloned within its StorageClass"
        )
    volume = (source.get("spec") or {}).get("volumeName")
    if not volume or (source.get("status") or {}).get("phase") != "Bound":
        raise _refuse(f"{field}: source claim {where} is not bound yet", retry=True)
    pv = pvs.get(str(volume))
    if pv is None:
        raise _refuse(f"{field}: the volume of source claim {where} is not known yet", retry=True)
    if (
        not provisioned_by(pv, provisioner_name)
        or not claim_ref_matches(pv, source)
        or class_name_of(pv) != class_name
        or (pv.get("status") or {}).get("phase") != "Bound"
        or (pv.get("metadata") or {}).get("deletionTimestamp")
    ):
        # Deliberately vague: which PV exists and whose it is is none of the tenant's business.
        raise _refuse(
            f"{field}: source claim {where} is not bound to a volume that {provisioner_name} "
            f"provisioned for it in StorageClass {class_name}; only such volumes can be cloned"
        )
    requested = _storage(claim, "spec", "resources", "requests", "storage")
    capacity = _storage(pv, "spec", "capacity", "storage")
    try:
        smaller = parse_quantity(requested) < parse_quantity(capacity)
    except (QuantityError, TypeError, ValueError):
        smaller = False  # the backend's own check of the request names the field
    if smaller:
        raise _refuse(
            f"spec.resources.requests.storage: {str(requested)[:64]} is less than the "
            f"{str(capacity)[:64]} of source claim {where}; a clone is at least as large "
            "as its source"
        )
    return pv

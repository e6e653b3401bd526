"""422 rules of updates: what may not change once written (a claim's request, a
volume's source, a class's parameters, a Secret's type), as each release words it.

Everything a create checks is checked again (``validation.validate_create``); these
are the rules that compare the new object with the stored one.
"""

from __future__ import annotations

import json
from typing import Any

from .resources import ResourceType
from .status import invalid
from .validation import PV_SOURCES, Cause, parse_quantity, validate_create

Obj = dict[str, Any]


RECOVER_EXPANSION_FAILURE = (1, 32)
"""From 1.32 (RecoverVolumeExpansionFailure on by default) a bound claim's request may
go down again, after a failed resize, but never below its ``status.capacity``."""


def _claim_update_causes(old: Obj, new: Obj, release: tuple[int, int]) -> list[Cause]:
    old_spec, new_spec = dict(old.get("spec") or {}), dict(new.get("spec") or {})
    causes: list[Cause] = []
    old_req = ((old_spec.get("resources") or {}).get("requests") or {}).get("storage")
    new_req = ((new_spec.get("resources") or {}).get("requests") or {}).get("storage")
    old_q, new_q = parse_quantity(old_req), parse_quantity(new_req)
    shown = parse_quantity(((old.get("status") or {}).get("capacity") or {}).get("storage"))
    bound = (old.get("status") or {}).get("phase") == "Bound"
    if old_q is not None and new_q is not None and new_q < old_q:
        if release < RECOVER_EXPANSION_FAILURE:
            causes.append(
                (
                    "spec.resources.requests.storage",
                    "FieldValueForbidden",
                    "Forbidden: field can not be less than previous value",
                )
            )
        elif bound and (shown is None or new_q < shown):
            causes.append(
                (
                    "spec.resources.requests.storage",
                    "FieldValueForbidden",
                    "Forbidden: field can not be less than status.capacity",
                )
            )
    # Mutable: requests of a bound claim only (an unbound claim's request change gets
    # the "immutable" answer, as from kube-apiserver); volumeName and storageClassName
    # only while unset (binding, retroactive default class).
    if (old.get("status") or {}).get("phase") == "Bound":
        for spec in (old_spec, new_spec):
            spec.pop("resources", None)
    for field in ("volumeName", "storageClassName"):
        if not old_spec.get(field):
            old_spec.pop(field, None)
            new_spec.pop(field, None)
    if old_spec != new_spec:
        causes.append(
            (
                "spec",
                "FieldValueForbidden",
                "Forbidden: spec is immutable after creation except resources.requests "
                + ("and volumeAttributesClassName " if release >= (1, 29) else "")
                + "for bound claims",
            )
        )
    return causes


# A StorageClass's immutable fields: 1.37 reports each as "Invalid value: null: field is
# immutable"; 1.25 forbids updates, except volumeBindingMode, reported with its new
# value. Checked at 1.25 and 1.37 only (the release between is a guess).
IMMUTABLE_AS_INVALID_SINCE = (1, 34)


def _class_update_causes(old: Obj, new: Obj, release: tuple[int, int]) -> list[Cause]:
    causes: list[Cause] = []
    for field in ("parameters", "provisioner", "reclaimPolicy", "volumeBindingMode"):
        if (old.get(field) or None) == (new.get(field) or None):
            continue
        if release >= IMMUTABLE_AS_INVALID_SINCE:
            causes.append((field, "FieldValueInvalid", "Invalid value: null: field is immutable"))
        elif field == "volumeBindingMode":
            shown = json.dumps(new.get(field) or "")
            causes.append(
                (field, "FieldValueInvalid", f"Invalid value: {shown}: field is immutable")
            )
        else:
            causes.append(
                (field, "FieldValueForbidden", f"Forbidden: updates to {field} are forbidden.")
            )
    return causes


def validate_update(
    rt: ResourceType, old: Obj, new: Obj, *, release: tuple[int, int] = (1, 25)
) -> None:
    validate_create(rt, new)
    name = new["metadata"]["name"]
    causes: list[Cause] = []
    if rt.plural == "persistentvolumeclaims":
        causes += _claim_update_causes(old, new, release)
    elif rt.plural == "persistentvolumes":
        old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
        if any(old_spec.get(s) != new_spec.get(s) for s in PV_SOURCES):
            causes.append(
                (
                    "spec.persistentvolumesource",
                    "FieldValueForbidden",
                    "Forbidden: spec.persistentvolumesource is immutable after creation",
                )
            )
    elif rt.plural == "storageclasses":
        causes += _class_update_causes(old, new, release)
    elif rt.plural == "secrets" and old.get("type") != new.get("type"):
        causes.append(("type", "FieldValueInvalid", "Invalid value: field is immutable"))
    if causes:
        raise invalid(rt, name, causes)

"""Static binding: whether an Available volume satisfies a claim, as the PV
controller's binder decides it (class, access modes, volume mode, size, selector)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .selectors import Requirement
from .validation import parse_quantity

Obj = dict[str, Any]

_BINDABLE = (None, "Pending", "Available")


def fitting_size(pv: Obj, claim_spec: Obj, class_name: str) -> Decimal | None:
    """The volume's size if it can be bound to a claim with this spec, else None."""
    if pv["metadata"].get("deletionTimestamp"):
        return None
    spec = pv.get("spec") or {}
    size = parse_quantity((spec.get("capacity") or {}).get("storage"))
    wanted = parse_quantity(
        ((claim_spec.get("resources") or {}).get("requests") or {}).get("storage")
    )
    modes = set(claim_spec.get("accessModes") or [])
    if (
        spec.get("claimRef")
        or (pv.get("status") or {}).get("phase") not in _BINDABLE
        or (spec.get("storageClassName") or "") != class_name
        or not modes <= set(spec.get("accessModes") or [])
        or spec.get("volumeMode", "Filesystem") != claim_spec.get("volumeMode", "Filesystem")
        or size is None
        or wanted is None
        or size < wanted
        or not _selects(claim_spec.get("selector") or {}, pv["metadata"].get("labels") or {})
    ):
        return None
    return size


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels + matchExpressions) against labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or []:
        op = ops.get(expr.get("operator", ""))
        if op is None:
            return False
        requirement = Requirement(expr.get("key", ""), op, frozenset(expr.get("values") or []))
        if not requirement.matches(labels):
            return False
    return True

"""What we accept in a PersistentVolumeClaim, checked before Heketi is asked.

A claim we cannot serve gets a Warning event naming the field and what to do, and
nothing else happens: no Heketi call, no GID, no retry storm.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.k8s.quantity import GIB, QuantityError, gib_ceil, parse_quantity

__all__ = [
    "MAX_VOLUME_GIB",
    "SUPPORTED_ACCESS_MODES",
    "ClaimError",
    "requested_gib",
    "validate_claim",
]

SUPPORTED_ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany")
# Heketi's size is a Go int of GiB: past it the request cannot even be sent. How large
# a volume Heketi can really build depends on its brick_max_size_gb and
# max_bricks_per_volume settings, so that is left to Heketi, whose "No space" answer
# becomes a clear event.
MAX_VOLUME_GIB = 2**63 - 1


class ClaimError(ValueError):
    """The claim asks for something a GlusterFS volume cannot be; retrying won't help."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"claim {field}: {reason}")


def _spec(claim: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = claim.get("spec")
    return spec if isinstance(spec, Mapping) else {}


def validate_claim(claim: Mapping[str, Any], *, data_source_allowed: bool = False) -> None:
    """Raise ``ClaimError`` for the first unsupported feature the claim asks for.

    A data source is allowed only on the clone path, where the controller has
    checked the source (``provisioner.controller.clone_source``); a plain provision
    must never drop a claim's request to start from a copy."""
    spec = _spec(claim)
    modes = spec.get("accessModes") or []
    if not modes:
        raise ClaimError("spec.accessModes", "at least one access mode is required")
    for mode in modes:
        if mode not in SUPPORTED_ACCESS_MODES:
            shown = str(mode)[:64]
            raise ClaimError(
                "spec.accessModes",
                f"{shown} is not supported by GlusterFS volumes "
                "(use ReadWriteOnce, ReadOnlyMany or ReadWriteMany)",
            )
    if spec.get("selector"):
        raise ClaimError(
            "spec.selector",
            "dynamic provisioning does not support a selector "
            "(remove it, or bind to an existing PV instead)",
        )
    if spec.get("volumeMode", "Filesystem") not in (None, "Filesystem"):
        raise ClaimError(
            "spec.volumeMode",
            f"{str(spec['volumeMode'])[:64]} is not supported; GlusterFS volumes are "
            "Filesystem only",
        )
    for source in ("dataSource", "dataSourceRef"):
        if spec.get(source) and not data_source_allowed:
            raise ClaimError(
                f"spec.{source}",
                "a claim with a data source is provisioned only as a clone of another claim",
            )
    requested_gib(claim)


def requested_gib(claim: Mapping[str, Any]) -> int:
    """The size to ask Heketi for: the storage request rounded up to whole GiB."""
    field = "spec.resources.requests.storage"
    resources = _spec(claim).get("resources") or {}
    requests = resources.get("requests") or {} if isinstance(resources, Mapping) else {}
    raw = requests.get("storage") if isinstance(requests, Mapping) else None
    if raw is None or raw == "":
        raise ClaimError(field, "a storage request is required")
    try:
        value = parse_quantity(raw)
    except QuantityError as err:
        raise ClaimError(field, str(err)) from None
    if value <= 0:
        raise ClaimError(field, f"{raw} must be greater than zero")
    if value > MAX_VOLUME_GIB * GIB:
        raise ClaimError(
            field,
            f"{str(raw)[:64]} is more GiB than Heketi's size field can hold",
        )
    return gib_ceil(value)

"""The log context of one work item: namespace, claim, class and volume.

Bound as structlog context variables around each item a worker handles, so that
every line logged meanwhile, from the controller, the backend or the clients it uses
(even through stdlib logging, rendered through structlog), names the claim it is about without
each call site passing the fields along. Context variables are per thread here
(workers are threads), so concurrent items never mix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from provisioner.controller.contract import pv_name
from provisioner.controller.predicates import class_name_of
from provisioner.k8s.informer import Lookup

__all__ = ["fields_for", "log_context"]


def fields_for(claims: Lookup, pvs: Lookup, kind: str, key: str) -> dict[str, Any]:
    """What the caches say about a queue key; fields that are unknown are omitted."""
    if kind in ("claim", "resize"):
        namespace, _, name = key.partition("/")
        fields: dict[str, Any] = {"namespace": namespace, "claim": name}
        claim = claims.get(key)
        if claim is not None:
            fields["class"] = class_name_of(claim)
            volume = (claim.get("spec") or {}).get("volumeName")
            uid = (claim.get("metadata") or {}).get("uid")
            fields["volume"] = volume or (pv_name(uid) if uid else None)
    else:
        fields = {"volume": key}
        pv = pvs.get(key)
        if pv is not None:
            spec = pv.get("spec") or {}
            ref = spec.get("claimRef") or {}
            fields.update(
                namespace=ref.get("namespace"),
                claim=ref.get("name"),
                **{"class": spec.get("storageClassName") or ""},
            )
    return {k: v for k, v in fields.items() if v is not None}


@contextmanager
def log_context(claims: Lookup, pvs: Lookup, key: tuple[str, str]) -> Iterator[None]:
    with structlog.contextvars.bound_contextvars(**fields_for(claims, pvs, *key)):
        yield

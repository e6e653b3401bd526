"""The log context of one work item: namespace, claim, class and volume.

Bound as structlog context variables around each item a worker handles, so that
every line logged meanwhile, from the controller, the Gluster provisioner (stdlib
logging, rendered through structlog) or ``heketi_client``, names the claim it is
about without each call site passing the fields along. Context variables are
per thread here (workers are threads), so concurrent items never mix.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import structlog

from provisioner.objects import pv_name
from provisioner.predicates import claim_class_name

if TYPE_CHECKING:
    from provisioner.controller import Controller


def fields_for(ctl: Controller, kind: str, key: str) -> dict[str, Any]:
    """What the caches say about a queue key; fields that are unknown are omitted."""
    if kind == "claim":
        namespace, _, name = key.partition("/")
        fields: dict[str, Any] = {"namespace": namespace, "claim": name}
        claim = ctl.claims.get(key)
        if claim is not None:
            fields["class"] = claim_class_name(claim)
            volume = (claim.get("spec") or {}).get("volumeName")
            uid = (claim.get("metadata") or {}).get("uid")
            fields["volume"] = volume or (pv_name(uid) if uid else None)
    else:
        fields = {"volume": key}
        pv = ctl.pvs.get(key)
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
def log_context(ctl: Controller, key: tuple[str, str]) -> Iterator[None]:
    with structlog.contextvars.bound_contextvars(**fields_for(ctl, *key)):
        yield

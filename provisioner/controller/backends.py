"""One controller, several provisioner names, each with its own backend.

``Backends`` maps a provisioner name to the ``Provisioner`` that serves it and is
itself a ``Provisioner`` with every optional capability, routing each call to the
backend it concerns: a claim by its StorageClass's ``provisioner``, a PV by its
``pv.kubernetes.io/provisioned-by`` annotation. The loop, the claim and volume
syncs and the predicates therefore stay as they are for one name, and only ask
``served_names`` which names to act on.

Why route here rather than run one controller per name: one process, one Lease,
one set of informers and one work queue (so one slow Heketi cannot starve the
other name's workers beyond the queue's fairness), and the controller still knows
nothing of what the backends are.

A capability a backend lacks answers as "nothing to do" for its PVs and classes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog

from provisioner.controller.contract import (
    Cloner,
    Expander,
    Gate,
    InvalidInput,
    Preparer,
    Provisioner,
    ProvisionError,
    Reconciler,
    Repairer,
    Takeover,
    WatchedKind,
)
from provisioner.controller.keys import ANN_PROVISIONED_BY
from provisioner.k8s.versions import ServerVersion

log = structlog.get_logger(__name__)

__all__ = ["Backends", "served_names"]

Obj = dict[str, Any]


def served_names(provisioner: Provisioner, default: str) -> frozenset[str]:
    """The names a backend serves: all of a ``Backends``, else ``default`` alone."""
    if isinstance(provisioner, Backends):
        return provisioner.names
    return frozenset({default})


class Backends:
    """``name -> Provisioner``; see the module docstring."""

    def __init__(self, by_name: Mapping[str, Provisioner]) -> None:
        if not by_name:
            raise ValueError("at least one provisioner name is needed")
        for name in by_name:
            if not name:
                raise ValueError("a provisioner name must not be empty")
        self.by_name = dict(by_name)
        self.names = frozenset(self.by_name)

    def __repr__(self) -> str:
        return f"Backends({sorted(self.names)})"

    def for_class(self, storage_class: Obj | None) -> Provisioner | None:
        name = (storage_class or {}).get("provisioner")
        return self.by_name.get(name) if isinstance(name, str) else None

    def for_pv(self, pv: Obj) -> Provisioner | None:
        annotations = (pv.get("metadata") or {}).get("annotations") or {}
        name = annotations.get(ANN_PROVISIONED_BY)
        return self.by_name.get(name) if isinstance(name, str) else None

    def _all(self) -> list[Provisioner]:
        return list(self.by_name.values())

    # -- Provisioner ---------------------------------------------------------------

    def provision(self, claim: Obj, storage_class: Obj) -> Obj:
        backend = self.for_class(storage_class)
        if backend is None:  # the predicates let only our names through
            raise ProvisionError(f"no backend serves {storage_class.get('provisioner')!r}")
        return backend.provision(claim, storage_class)

    def delete(self, pv: Obj) -> None:
        backend = self.for_pv(pv)
        if backend is None:
            raise ProvisionError(f"no backend serves the PV {pv['metadata'].get('name')}")
        backend.delete(pv)

    # -- Cloner --------------------------------------------------------------------

    def clone(self, claim: Obj, storage_class: Obj, source_pv: Obj) -> Obj:
        backend = self.for_class(storage_class)
        if not isinstance(backend, Cloner):
            raise InvalidInput(
                f"spec.dataSource: provisioner {storage_class.get('provisioner')} cannot "
                "clone volumes"
            )
        return backend.clone(claim, storage_class, source_pv)

    # -- Expander ------------------------------------------------------------------

    def expand(self, pv: Obj, requested_bytes: int) -> str:
        backend = self.for_pv(pv)
        if not isinstance(backend, Expander):
            raise InvalidInput(f"PV {pv['metadata'].get('name')}: its volumes cannot grow")
        return backend.expand(pv, requested_bytes)

    def resized_by_server(self, server: ServerVersion) -> bool:
        """The controller resizes only claims of the name it was started with (the
        file backend's); so this is that backend's answer."""
        return any(isinstance(b, Expander) and b.resized_by_server(server) for b in self._all())

    # -- Preparer ------------------------------------------------------------------

    def prepare(self, pvs: Iterable[Obj], claims: Iterable[Obj]) -> None:
        pv_list, claim_list = list(pvs), list(claims)
        for backend in self._all():
            if isinstance(backend, Preparer):
                backend.prepare(pv_list, claim_list)

    # -- Gate ----------------------------------------------------------------------

    def gate(self, storage_class: Obj, server: ServerVersion) -> str | None:
        backend = self.for_class(storage_class)
        if isinstance(backend, Gate):
            return backend.gate(storage_class, server)
        return None

    # -- Takeover ------------------------------------------------------------------

    def plugin_removed(self, server: ServerVersion) -> bool:
        return any(isinstance(b, Takeover) and b.plugin_removed(server) for b in self._all())

    # -- Repairer ------------------------------------------------------------------

    def watched_kinds(self) -> Sequence[WatchedKind]:
        kinds: list[WatchedKind] = []
        for backend in self._all():
            if isinstance(backend, Repairer):
                kinds += [k for k in backend.watched_kinds() if k not in kinds]
        return kinds

    def watched_key(self, pv: Obj) -> str | None:
        backend = self.for_pv(pv)
        return backend.watched_key(pv) if isinstance(backend, Repairer) else None

    def repair(self, pv: Obj) -> bool:
        backend = self.for_pv(pv)
        return backend.repair(pv) if isinstance(backend, Repairer) else False

    # -- Reconciler ----------------------------------------------------------------

    def reconcile(
        self, pvs: Iterable[Obj], claims: Iterable[Obj], storage_classes: Iterable[Obj]
    ) -> int:
        """Every backend's sweep; one failing does not keep the others from theirs."""
        pv_list, claim_list, class_list = list(pvs), list(claims), list(storage_classes)
        total = 0
        for name, backend in self.by_name.items():
            if not isinstance(backend, Reconciler):
                continue
            try:
                total += backend.reconcile(pv_list, claim_list, class_list)
            except Exception as exc:  # the next period is the retry
                log.warning("orphan_sweep.failed", provisioner=name, error=str(exc)[:200])
        return total

    def next_reconcile_in(self) -> float | None:
        waits = [
            w
            for b in self._all()
            if isinstance(b, Reconciler) and (w := b.next_reconcile_in()) is not None
        ]
        return min(waits) if waits else None

"""The contract between the controller and a storage backend.

The controller owns watches, queues, retries, events and the PV object itself; a
backend owns its volumes and whatever objects only it understands. The contract is
two calls, ``Provisioner.provision`` and ``Provisioner.delete``; everything else a
backend may offer is an optional capability below, a small protocol the controller
checks with ``isinstance`` once, when it is built:

=============  =================================================================
``Preparer``   rebuild in-memory state from the caches before any worker runs
``Repairer``   keeps objects beside each PV; names the kinds the controller must
               watch, how a PV maps to their key, and re-creates missing ones
``Reconciler`` a periodic clean-up from snapshots of the caches, with its own
               "call me again in" hint
``Gate``       refuses a class on this API server version, with the reason
``Takeover``   serves the provisioner name of an in-tree plugin this API server
               no longer has (its PV controller then never annotates the claims
               and marks released PVs Failed)
``Expander``   grows the backend volume of a bound PV (``allowVolumeExpansion``)
``Cloner``     provisions a claim whose ``dataSource`` is another claim: the new
               volume starts as a copy of the source's (part of provisioning: the
               same events, metrics and PV write; the controller has checked the
               source claim and PV first, see ``controller.clone_source``)
=============  =================================================================

A failed attempt raises ``ProvisionError`` with an ``Outcome`` saying what may
help: trying again later, or a change to the claim or its class.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from provisioner.k8s.versions import ServerVersion

__all__ = [
    "Cloner",
    "Expander",
    "Gate",
    "InvalidInput",
    "Outcome",
    "Preparer",
    "ProvisionError",
    "Provisioner",
    "Reconciler",
    "Repairer",
    "Takeover",
    "WatchedKind",
    "pv_name",
]

Obj = dict[str, Any]


def pv_name(claim_uid: str) -> str:
    """The PV for a claim is always ``pvc-<claim uid>``: a retry after a crash finds
    the PV an earlier attempt wrote (and the cache answers "done already")."""
    return f"pvc-{claim_uid}"


class Outcome(enum.Enum):
    """What the controller does after a failed attempt."""

    RETRY = "retry"
    """Try again with exponential backoff; nothing needs to change first."""

    WAIT_FOR_CHANGE = "wait-for-change"
    """Trying again cannot help until the claim or its class changes: no retry until
    then (or until the next resync, since a Secret may have been fixed meanwhile)."""


class ProvisionError(Exception):
    """A provision/delete attempt failed; ``message`` is shown in an event."""

    def __init__(self, message: str, *, outcome: Outcome = Outcome.RETRY) -> None:
        super().__init__(message)
        self.message = message
        self.outcome = outcome


class InvalidInput(ProvisionError):
    """Bad parameter, secret or claim: wait until the claim or its class changes."""

    def __init__(self, message: str, *, outcome: Outcome = Outcome.WAIT_FOR_CHANGE) -> None:
        super().__init__(message, outcome=outcome)


@runtime_checkable
class Provisioner(Protocol):
    """What every backend does. Both calls are made from worker threads, never two at
    once for one claim or one PV."""

    def provision(self, claim: Obj, storage_class: Obj) -> Obj:
        """Create the backend volume (or find the one an earlier attempt made) and
        return the PV body, named ``pv_name(claim uid)``; the controller creates it
        (AlreadyExists counts as done)."""

    def delete(self, pv: Obj) -> None:
        """Remove the backend volume and everything provision made; raise to retry.
        The controller then removes its finalizer and the PV."""


@runtime_checkable
class Preparer(Protocol):
    def prepare(self, pvs: Iterable[Obj], claims: Iterable[Obj]) -> None:
        """Called once after the caches synced, before any worker runs (GIDs, indexes)."""


@dataclass(frozen=True)
class WatchedKind:
    """Objects of one resource a backend keeps beside its PVs (``resource`` is the
    plural, e.g. ``endpoints``); only those matching ``label_selector`` are cached,
    and of them only their identity."""

    resource: str
    label_selector: str | None = None


@runtime_checkable
class Repairer(Protocol):
    """A backend whose bound PVs need objects beside them (a glusterfs PV mounts
    through an Endpoints object, which a selector-less Service keeps alive)."""

    def watched_kinds(self) -> Sequence[WatchedKind]:
        """The kinds to cache; a deletion of one sends its PV to a worker."""

    def watched_key(self, pv: Obj) -> str | None:
        """``namespace/name`` shared by the PV's watched objects (None: it has none)."""

    def repair(self, pv: Obj) -> bool:
        """Re-create the missing ones of a bound PV; True if anything was re-created."""


@runtime_checkable
class Reconciler(Protocol):
    """A backend that cleans up what no claim or PV accounts for (volumes left by a
    crash between the backend create and the PV write)."""

    def reconcile(
        self, pvs: Iterable[Obj], claims: Iterable[Obj], storage_classes: Iterable[Obj]
    ) -> int:
        """Clean up; return how many backend volumes went.

        Called from one background thread (once after start, then every
        ``orphan_sweep_period`` seconds) with snapshots of the caches. It must not
        raise for backend trouble: the next call is the retry.
        """

    def next_reconcile_in(self) -> float | None:
        """Seconds until something the last call saw becomes due (None: nothing
        waits), so the controller calls again then rather than a period later."""


@runtime_checkable
class Gate(Protocol):
    def gate(self, storage_class: Obj, server: ServerVersion) -> str | None:
        """Why claims of this class must not be provisioned on this API server (the
        message of one Warning per claim), or None to go ahead."""


@runtime_checkable
class Takeover(Protocol):
    def plugin_removed(self, server: ServerVersion) -> bool:
        """True when we serve the name of an in-tree plugin that this API server no
        longer has. Its PV controller then emits ProvisioningFailed for the claims
        and never sets the storage-provisioner annotation (so claims of our classes
        are acted on without it), and puts a PV whose claim went into phase Failed
        instead of Released (so such a PV is deleted like a Released one, once the
        API server confirms its claim is gone)."""


@runtime_checkable
class Expander(Protocol):
    """A backend whose volumes can grow while bound (no node-side resize needed)."""

    def expand(self, pv: Obj, requested_bytes: int) -> str:
        """Grow the volume behind ``pv`` to hold at least ``requested_bytes`` and return
        its new capacity as a quantity (``"3Gi"``), which the controller writes to the
        PV and then to the claim's status.

        Must be safe to repeat: a retry after a crash between the backend's expand
        and the PV update must find the volume grown already and not grow it again.
        """

    def resized_by_server(self, server: ServerVersion) -> bool:
        """True when this API server's own controllers grow these volumes (an in-tree
        plugin that still exists there): then the controller leaves resizes alone, so
        that two resizers never race on one volume."""


@runtime_checkable
class Cloner(Protocol):
    def clone(self, claim: Obj, storage_class: Obj, source_pv: Obj) -> Obj:
        """Like ``Provisioner.provision``, but the new volume starts as a copy of the
        one behind ``source_pv``. The controller has already checked that the source
        is a claim in the same namespace and class, bound to ``source_pv`` (a PV of
        ours whose claimRef uid is the source claim's) and no larger than the request;
        the backend still takes the volume id from ``source_pv`` only, never from
        anything a tenant wrote."""

"""The seam between the controller loop and a storage backend.

The controller owns watches, queues, retries, events and the PV object itself;
a ``Provisioner`` owns the backend and the objects only it understands
(Endpoints/Service for GlusterFS).  Keeping the contract this small is what lets
the controller be tested without Heketi and ``gluster.py`` without watches.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, runtime_checkable


class ProvisionError(Exception):
    """A provision/delete attempt failed; the message is shown in an event.

    ``retry`` tells the controller whether trying again (with backoff) can help
    without anything changing on the Kubernetes side.
    """

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.retry = retry


class InvalidInput(ProvisionError):
    """Bad parameter, secret or claim: wait until the claim or its class changes."""

    def __init__(self, message: str, *, retry: bool = False) -> None:
        super().__init__(message, retry=retry)


@runtime_checkable
class Provisioner(Protocol):
    def prepare(self, pvs: Iterable[dict[str, Any]], claims: Iterable[dict[str, Any]]) -> None:
        """Called once after the caches synced, before any worker runs (GIDs, indexes)."""

    def provision(self, claim: dict[str, Any], storage_class: dict[str, Any]) -> dict[str, Any]:
        """Create the backend volume (or find the one an earlier attempt made); return the PV."""

    def delete(self, pv: dict[str, Any]) -> None:
        """Remove the backend volume and everything provision made; raise to retry."""

    def repair(self, pv: dict[str, Any]) -> bool:
        """Re-create missing companions of a bound PV; True if anything was re-created."""


@runtime_checkable
class Reconciler(Protocol):
    """Optional for a ``Provisioner``: the controller calls ``reconcile`` if present."""

    def reconcile(
        self,
        pvs: Iterable[dict[str, Any]],
        claims: Iterable[dict[str, Any]],
        storage_classes: Iterable[dict[str, Any]],
    ) -> int:
        """Clean up backend volumes that no claim or PV accounts for; return how many.

        Called from one background thread (once after ``prepare``, then every
        ``orphan_sweep_period`` seconds) with snapshots of the caches. It must not
        raise for backend trouble: the next call is the retry.
        """

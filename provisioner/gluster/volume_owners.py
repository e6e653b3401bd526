"""Which PV, or which claim being provisioned here, owns each Heketi volume id.

Heketi's answers are input to check (``answers``): a Heketi that is compromised,
buggy or restored from an old backup can end claim B's create with a 303 to claim
A's volume. Written into B's PV, that id would let B's pods mount A's data, and
deleting B would delete A's volume. So before a volume id from an answer is used,
the question is asked here: does a PV already name it, or has another claim in this
process taken it (its PV not written yet)?

The PV side comes from the controller's PV cache (``attach``: the informer's
handlers keep the index current, the first list included) and, for a backend used
without a controller, from ``prepare``'s list (``add_pvs``). Which ids a PV names is
the business of each volume kind, so the readers are passed in (``id_readers``:
file volumes' ``heketi-volume-id`` / ``vol_<id>`` path; block volumes' own keys).

Cost: one dict entry per PV that names a volume; the id and name strings are those
of the cached PV, not copies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from provisioner.controller.contract import pv_name
from provisioner.gluster.objects import delete_info
from provisioner.k8s.informer import Informer

__all__ = ["IdReader", "VolumeOwners", "file_volume_id"]

Obj = Mapping[str, Any]
IdReader = Callable[[Obj], "str | None"]
"""The Heketi volume id a PV names (None: none of this kind)."""


def file_volume_id(pv: Obj) -> str | None:
    """The file volume a PV names, read as delete reads it (``objects.delete_info``)."""
    return delete_info(pv).volume_id


class VolumeOwners:
    """Thread-safe index: volume id → the PVs naming it and the claim that took it."""

    def __init__(self, id_readers: Sequence[IdReader] = (file_volume_id,)) -> None:
        self._readers = tuple(id_readers)
        self._lock = threading.Lock()
        self._pvs: dict[str, str | tuple[str, ...]] = {}  # id -> PV name(s)
        self._named: dict[str, tuple[str, ...]] = {}  # PV name -> ids it names
        self._claims: dict[str, str] = {}  # id -> claim uid that took it (no PV yet)
        self.attached = False  # an informer keeps it current (``attach``)

    # -- the PV side -----------------------------------------------------------------

    def attach(self, pvs: Informer) -> None:
        """Follow a PV informer (register before it starts)."""
        self.attached = True
        pvs.add_handlers(
            on_add=self.add_pv,
            on_update=lambda _old, new: self.add_pv(new),
            on_delete=self.remove_pv,
        )

    def add_pvs(self, pvs: Iterable[Obj]) -> None:
        for pv in pvs:
            self.add_pv(pv)

    def add_pv(self, pv: Obj) -> None:
        """A PV was seen (added or changed): index the ids it names now."""
        name = _name(pv)
        if not name:
            return
        ids: tuple[str, ...] = ()
        for read in self._readers:
            try:
                found = read(pv)
            except (KeyError, TypeError, ValueError, AttributeError):
                found = None  # a malformed PV names nothing we can use
            if found and found not in ids:
                ids += (found,)
        with self._lock:
            self._unindex(name)
            if ids:
                self._named[name] = ids
            for volume_id in ids:
                held = self._pvs.get(volume_id)
                if held is None:
                    self._pvs[volume_id] = name
                elif isinstance(held, str):
                    if held != name:
                        self._pvs[volume_id] = (held, name)
                elif name not in held:
                    self._pvs[volume_id] = (*held, name)
                taker = self._claims.get(volume_id)
                if taker is not None and pv_name(taker) == name:
                    del self._claims[volume_id]  # the claim that took it has its PV now

    def remove_pv(self, pv: Obj) -> None:
        name = _name(pv)
        if name:
            with self._lock:
                self._unindex(name)

    def _unindex(self, name: str) -> None:
        for volume_id in self._named.pop(name, ()):
            held = self._pvs.get(volume_id)
            if held is None or held == name:
                self._pvs.pop(volume_id, None)
            elif isinstance(held, tuple):
                rest = tuple(n for n in held if n != name)
                self._pvs[volume_id] = rest[0] if len(rest) == 1 else rest

    # -- the question --------------------------------------------------------------------

    def others(self, volume_id: str, claim_uid: str) -> list[str]:
        """Who but ``claim_uid`` owns the volume: "PV <name>" / "claim <uid>" entries."""
        with self._lock:
            return self._others(volume_id, claim_uid)

    def _others(self, volume_id: str, claim_uid: str) -> list[str]:
        own = pv_name(claim_uid)
        held = self._pvs.get(volume_id)
        names = (held,) if isinstance(held, str) else held or ()
        found = [f"PV {n}" for n in names if n != own]
        taker = self._claims.get(volume_id)
        if taker is not None and taker != claim_uid:
            found.append(f"claim {taker}")
        return found

    def take(self, volume_id: str, claim_uid: str) -> list[str]:
        """Take the volume for ``claim_uid`` unless someone else owns it; returns the
        other owners (empty: taken). Checking and taking are one step, so two claims
        answered with one id cannot both have it."""
        with self._lock:
            found = self._others(volume_id, claim_uid)
            if not found:
                self._claims[volume_id] = claim_uid
            return found

    def release(self, volume_id: str, claim_uid: str | None = None) -> None:
        """The volume is gone (or no longer the claim's): forget the claim's hold."""
        with self._lock:
            if claim_uid is None or self._claims.get(volume_id) == claim_uid:
                self._claims.pop(volume_id, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._pvs)


def _name(pv: Obj) -> str:
    metadata = pv.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return name if isinstance(name, str) else ""

"""The orphan sweep: Heketi volumes of ours that nothing will ever provision or delete.

How one comes about: the process creates the Heketi volume and is killed before the
PV is written, and the claim is deleted while no process runs. After a restart the
claim is gone, so no worker looks for the volume, and no PV names it, so no delete
ever reaches it. Only a look at Heketi itself can find it, and that is this sweep.

What a volume must be to be deleted (every condition, checked in this order):

* named like ours (``pvc-<uid>`` or ``<prefix>_<namespace>_<claim>_<uid>``, as
  ``audit.claim_uid_of_volume`` reads it): ``heketidbstorage``, ``vol_<id>`` and
  other tenants' volumes are never touched;
* named by no PV (``heketi-volume-id`` annotation, ``vol_<id>`` path, or the path
  itself), whoever's the PV is: an operator recovering a volume by hand points a
  static PV at it;
* its claim uid is no live claim in the cache, and no ``provision`` for it runs in
  this process;
* made by the naming scheme of a StorageClass of ours on that server whose
  ``reclaimPolicy`` is Delete, and of no such class with Retain. Kubernetes tells
  operators to delete a Released PV of a Retain class and keep its storage: that
  volume looks exactly like a crash orphan, and deleting it would destroy data kept
  on purpose. Where that cannot be told apart, the volume is kept (``audit`` still
  lists it);
* seen like this in an earlier sweep, at least ``grace_seconds`` ago. A process
  still alive (one that lost its Lease, a slow old replica) may be between the Heketi
  create and the PV write; by the next sweep its PV exists. Just before deleting, the
  PV ``pvc-<uid>`` is read from the API server too, so a lagging cache cannot hide it.

Cost towards Heketi, per server: one ``GET /volumes``, then a GET only for ids that
no PV references and that neither the volume index nor an earlier sweep has seen:
normally none. With 10,000 bound PVs a sweep is one request per server; k new
unreferenced volumes cost k GETs once, and a DELETE each when they are reclaimed.

Only servers named by a StorageClass of ours are listed (with that class's
credentials): a volume on any other server could not pass the reclaim-policy test.

GIDs: the volume's gid goes back to the allocator of our classes on that server,
except where something still holds it: a PV of that class, an attempt record of
this process in that class, or another volume on the server (whose class is not
known). Keeping a gid costs a gap in the numbering; releasing one wrongly would hand
out a duplicate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from heketi_client import HeketiClient, VolumeInfo
from heketi_client.errors import HeketiError, NotFound, Unauthorized
from provisioner.audit import claim_uid_of_volume
from provisioner.classes import ParameterError, parse_class_parameters
from provisioner.gid import gid_from_pv
from provisioner.heketi_credentials import target_for_class
from provisioner.heketi_failures import scrub
from provisioner.heketi_pool import HeketiTarget, normalise_url
from provisioner.kubeapi import KubeAPIError, KubeNotFound
from provisioner.objects import delete_info, heketi_volume_name, pv_name
from provisioner.protocol import ProvisionError

if TYPE_CHECKING:
    from provisioner.gluster import GlusterProvisioner

__all__ = ["DEFAULT_ORPHAN_GRACE", "OrphanSweeper", "Reclaimed"]

log = logging.getLogger(__name__)

DEFAULT_ORPHAN_GRACE = 60.0
"""Seconds an unreferenced volume must have been seen before it is deleted."""

_GET_WORKERS = 4
_SAMPLE_UID = "00000000-0000-0000-0000-000000000000"

Obj = dict[str, Any]


@dataclass(frozen=True)
class Reclaimed:
    """One orphan deleted by a sweep."""

    server: str
    volume_id: str
    name: str


@dataclass
class _Sighting:
    sweep: int
    seen_at: float


@dataclass
class _Server:
    """One Heketi server as our StorageClasses describe it."""

    url: str
    targets: list[HeketiTarget] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    delete_schemes: set[str | None] = field(default_factory=set)
    retain_schemes: set[str | None] = field(default_factory=set)


def naming_scheme(volume_name: str) -> str | None:
    """None for ``pvc-<uid>``; the prefix for ``<prefix>_<ns>_<claim>_<uid>``."""
    return None if volume_name.lower().startswith("pvc-") else volume_name.split("_", 1)[0]


class OrphanSweeper:
    """Remembers what earlier sweeps saw; ``sweep`` deletes what stayed orphaned.

    Sweeps are meant to run one at a time (the controller's sweep thread).
    """

    def __init__(
        self,
        owner: GlusterProvisioner,
        *,
        grace_seconds: float = DEFAULT_ORPHAN_GRACE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if grace_seconds < 0:
            raise ValueError("orphan grace must not be negative")
        self.owner = owner
        self.grace_seconds = grace_seconds
        self.clock = clock
        self._sweeps = 0
        self._sightings: dict[str, dict[str, _Sighting]] = {}  # url -> id -> first seen
        # url -> id -> volume: every volume a sweep had to GET, so it is fetched once
        self._fetched: dict[str, dict[str, VolumeInfo]] = {}
        self._kept_noted: set[tuple[str, str]] = set()  # (url, id) logged as kept

    # -- the sweep -----------------------------------------------------------------

    def sweep(
        self, pvs: Iterable[Obj], claims: Iterable[Obj], storage_classes: Iterable[Obj]
    ) -> list[Reclaimed]:
        """One pass over every server of ours; returns what was deleted."""
        self._sweeps += 1
        referenced_ids: set[str] = set()
        referenced_names: set[str] = set()
        pv_gids: set[tuple[str, int]] = set()
        for pv in pvs:
            spec = pv.get("spec") or {}
            if "glusterfs" not in spec:
                continue
            info = delete_info(pv)
            if info.volume_id:
                referenced_ids.add(info.volume_id)
            if info.volume_name:
                referenced_names.add(info.volume_name)
            gid = gid_from_pv(pv)
            if gid is not None:
                pv_gids.add((info.class_name or "", gid))
        live = {str(c["metadata"].get("uid")) for c in claims}
        reclaimed: list[Reclaimed] = []
        for server in self._servers(storage_classes).values():
            try:
                reclaimed += self._sweep_server(
                    server, referenced_ids, referenced_names, live, pv_gids
                )
            except HeketiError as err:  # client errors never carry the key
                log.warning("orphan sweep of Heketi at %s stopped: %s", server.url, err)
            except Exception:  # one server's trouble must not stop the others
                log.exception("orphan sweep of Heketi at %s failed", server.url)
        return reclaimed

    def _servers(self, storage_classes: Iterable[Obj]) -> dict[str, _Server]:
        servers: dict[str, _Server] = {}
        for storage_class in storage_classes:
            if storage_class.get("provisioner") != self.owner.provisioner_name:
                continue
            name = storage_class["metadata"]["name"]
            try:
                params = parse_class_parameters(storage_class.get("parameters") or {})
            except ParameterError:
                continue  # its claims get the event; nothing was made through it
            server = servers.setdefault(
                normalise_url(params.rest_url), _Server(normalise_url(params.rest_url))
            )
            server.classes.append(name)
            sample = {"metadata": {"uid": _SAMPLE_UID, "namespace": "n", "name": "c"}}
            scheme = naming_scheme(heketi_volume_name(params, sample))
            if (storage_class.get("reclaimPolicy") or "Delete") == "Delete":
                server.delete_schemes.add(scheme)
            else:
                server.retain_schemes.add(scheme)
            try:
                target = target_for_class(self.owner.kube, params, class_name=name)
            except ProvisionError as err:  # messages never carry the key
                log.warning("orphan sweep cannot use StorageClass %s: %s", name, err.message)
                continue
            if target not in server.targets:
                server.targets.append(target)
        return servers

    def _list(self, server: _Server) -> tuple[HeketiTarget, HeketiClient, list[str]] | None:
        """The ids on the server, with the first credentials it accepts."""
        for target in server.targets:
            client = self.owner.pool.client(target)
            try:
                return target, client, client.list_volumes()
            except Unauthorized:
                continue
            except HeketiError as err:
                log.warning(
                    "orphan sweep cannot list volumes at %s: %s",
                    server.url,
                    scrub(str(err), target.key),
                )
                return None
        if server.targets:
            log.warning("orphan sweep: Heketi at %s refused every credential", server.url)
        return None

    def _sweep_server(
        self,
        server: _Server,
        referenced_ids: set[str],
        referenced_names: set[str],
        live: set[str],
        pv_gids: set[tuple[str, int]],
    ) -> list[Reclaimed]:
        listed = self._list(server)
        if listed is None:
            return []
        target, client, ids = listed
        url = server.url
        known = self._unreferenced(url, client, [i for i in ids if i not in referenced_ids])
        before = self._sightings.get(url, {})
        now = self.clock()
        in_flight = self.owner.in_flight_claims()
        sightings: dict[str, _Sighting] = {}
        due: list[tuple[VolumeInfo, str]] = []
        for volume in known.values():
            uid = claim_uid_of_volume(volume.name)
            if uid is None:
                continue  # not named like ours: never touched
            if volume.name in referenced_names or uid in live or uid in in_flight:
                continue
            if not self._reclaimable(server, volume):
                continue
            seen = before.get(volume.id) or _Sighting(self._sweeps, now)
            sightings[volume.id] = seen
            if seen.sweep < self._sweeps and now - seen.seen_at >= self.grace_seconds:
                due.append((volume, uid))
        self._sightings[url] = sightings
        listed_ids = set(ids)
        self._kept_noted = {k for k in self._kept_noted if k[0] != url or k[1] in listed_ids}

        other_gids = {v.gid for v in known.values() if v.gid}
        reclaimed = []
        for volume, uid in due:
            if self._delete(server, target, volume, uid):
                del sightings[volume.id]
                others = other_gids - {volume.gid} if _gid_unique(known, volume) else other_gids
                self._release_gid(server, volume, uid, pv_gids, others)
                reclaimed.append(Reclaimed(url, volume.id, volume.name))
        return reclaimed

    def _unreferenced(
        self, url: str, client: HeketiClient, ids: list[str]
    ) -> dict[str, VolumeInfo]:
        """The volumes behind ``ids``: from the provisioner's index or an earlier sweep
        where known, else one GET each (remembered for the next sweeps)."""
        index = self.owner.indexes.existing(url)
        before = self._fetched.get(url, {})
        known: dict[str, VolumeInfo] = {}
        unknown: list[str] = []
        for volume_id in ids:
            volume = before.get(volume_id) or (index.get(volume_id) if index else None)
            if volume is None:
                unknown.append(volume_id)
            else:
                known[volume_id] = volume
        fresh = {v.id: v for v in _fetch(client, unknown)}
        known.update(fresh)
        # Forget what is gone or referenced now.
        self._fetched[url] = {i: v for i, v in before.items() if i in known} | fresh
        return known

    def _reclaimable(self, server: _Server, volume: VolumeInfo) -> bool:
        scheme = naming_scheme(volume.name)
        if scheme in server.delete_schemes and scheme not in server.retain_schemes:
            return True
        if (server.url, volume.id) not in self._kept_noted:
            self._kept_noted.add((server.url, volume.id))
            log.warning(
                "keeping Heketi volume %s (%s) at %s although no claim or PV names it: no "
                "StorageClass of ours there deletes volumes named like it, or one retains "
                "them; delete it by hand if its data is not wanted",
                volume.name,
                volume.id,
                server.url,
            )
        return False

    def _delete(self, server: _Server, target: HeketiTarget, volume: VolumeInfo, uid: str) -> bool:
        if uid in self.owner.in_flight_claims():
            return False
        try:
            self.owner.kube.get("persistentvolumes", pv_name(uid))
            return False  # written since the cache was read
        except KubeNotFound:
            pass
        except KubeAPIError as err:
            log.warning("orphan sweep cannot check PV %s: %s; next sweep", pv_name(uid), err)
            return False
        try:
            self.owner.delete_backend_volume(target, volume.id)
        except ProvisionError as err:  # delete_failure scrubs the key
            log.warning("orphan sweep could not delete %s: %s", volume.name, err.message)
            return False
        log.info(
            "reclaimed orphaned Heketi volume %s (%s) at %s: claim %s is gone and no PV "
            "names the volume",
            volume.name,
            volume.id,
            server.url,
            uid,
        )
        return True

    def _release_gid(
        self,
        server: _Server,
        volume: VolumeInfo,
        uid: str,
        pv_gids: set[tuple[str, int]],
        other_gids: set[int],
    ) -> None:
        held = self.owner.attempt_gids(except_claim=uid)
        self.owner.volume_deleted(server.url, volume.id, "", None, uid)  # index, attempt
        gid = volume.gid
        if not gid or gid in other_gids:
            return
        for class_name in server.classes:
            if (class_name, gid) not in pv_gids and (class_name, gid) not in held:
                self.owner.gids.release(class_name, gid)


def _gid_unique(known: dict[str, VolumeInfo], volume: VolumeInfo) -> bool:
    return sum(1 for v in known.values() if v.gid == volume.gid) == 1


def _fetch(client: HeketiClient, ids: list[str]) -> list[VolumeInfo]:
    if not ids:
        return []

    def get(volume_id: str) -> VolumeInfo | None:
        try:
            return client.get_volume(volume_id)
        except NotFound:  # deleted between the list and the GET
            return None

    with ThreadPoolExecutor(max_workers=min(_GET_WORKERS, len(ids))) as pool:
        return [v for v in pool.map(get, ids) if v is not None]

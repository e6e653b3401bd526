"""The orphan sweep: Heketi volumes of ours that nothing will ever provision or delete.

How one comes about: the process creates the Heketi volume and is killed before the
PV is written, and the claim is deleted while no process runs. After a restart the
claim is gone, so no worker looks for the volume, and no PV names it, so no delete
ever reaches it.

Where the sweep starts: the intent records (``provisioner.intent``) that provision
writes on the claim's Service *before* the Heketi create. Heketi's own volume list
is never used to guess: a ``pvc-<uid>`` volume with no record in our API server is
another cluster's (one Heketi may serve several), an operator's, or older than the
records, and is never touched (``audit`` still lists it).

A record is reclaimed when every one of these holds, checked in this order:

* its claim uid is no live claim in the cache, and no PV ``pvc-<uid>`` is cached;
* it stayed so across two sweeps at least ``grace_seconds`` apart (see below);
* its StorageClass still exists with ``reclaimPolicy: Delete``. Under Retain, a
  Released PV deleted by its operator leaves exactly this picture, and its data is
  meant to stay; with the class gone the policy is unknown. Both are kept, with one
  warning per process;
* no ``provision`` for the claim runs in this process (the two exclude each other
  per claim uid while the sweep works on it);
* the API server (not the cache) has no claim of that name with that uid, and a
  direct GET of the PV answers 404: a lagging cache cannot make the sweep take a live volume.

Then: the volume is looked up by its recorded name on the recorded server (what
this process knows of the claim's attempt first; otherwise the name index, brought
up to date with one list plus a GET per id not seen before), deleted (404 = done),
its GID released once Heketi confirmed, then the Endpoints and the Service go. A
record with no volume (the create failed, or never ran) just loses its Service and
GID.

Why a grace at all: a PV is written only by a ``provision`` that started while the
claim existed. In this process that is excluded above; with leader election no
other process runs a provision (a leader that loses its Lease stops at once), so
the only PV write that can still land is one a process sent just before it died.
The grace (default 10 s) covers that, and a create a dead process left running in
Heketi: the sweep that acts re-reads Heketi's list, so a volume that appeared
meanwhile is found and deleted. A create still running longer than the successor's
start plus the grace would appear after its record is gone; leader election's lease
expiry (15 s) adds to that margin.

Cost: with no candidate records, nothing beyond the caches (zero Heketi requests,
zero API requests when the controller hands its Service cache in).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from heketi_client import VolumeInfo
from heketi_client.errors import HeketiError
from provisioner.classes import ParameterError, parse_class_parameters
from provisioner.gid import gid_from_pv
from provisioner.heketi_credentials import key_for_delete
from provisioner.heketi_pool import HeketiTarget
from provisioner.intent import Intent, read_intent
from provisioner.kubeapi import KubeAPIError, KubeNotFound
from provisioner.objects import pv_name
from provisioner.protocol import ProvisionError
from provisioner.storage_endpoints import delete_companions

if TYPE_CHECKING:
    from provisioner.gluster import GlusterProvisioner

__all__ = ["DEFAULT_ORPHAN_GRACE", "OrphanSweeper", "Reclaimed"]

log = logging.getLogger(__name__)

DEFAULT_ORPHAN_GRACE = 10.0
"""Seconds a record must have stayed orphaned (over two sweeps) before it is acted on."""

Obj = dict[str, Any]
_Key = tuple[str, str, str]  # namespace, Service name, claim uid


@dataclass(frozen=True)
class Reclaimed:
    """One record cleaned up by a sweep; ``volume_id`` is "" if no volume existed."""

    server: str
    volume_id: str
    name: str


@dataclass
class _Sighting:
    sweep: int
    seen_at: float


def _key(intent: Intent) -> _Key:
    return (intent.namespace, intent.service, intent.claim_uid)


class OrphanSweeper:
    """Remembers when each orphaned record was first seen; ``sweep`` acts on the due.

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
        self._sightings: dict[_Key, _Sighting] = {}
        self._kept_noted: set[_Key] = set()

    # -- the sweep -----------------------------------------------------------------

    def sweep(
        self,
        pvs: Iterable[Obj],
        claims: Iterable[Obj],
        storage_classes: Iterable[Obj] = (),
        *,
        services: Iterable[Obj] | None = None,
    ) -> list[Reclaimed]:
        """One pass over the records; returns what was cleaned up.

        ``services``: our Services (the controller's cache); None reads them from
        the API server. ``storage_classes`` is unused (the class of a record is
        looked up by name) and kept for the ``Reconciler`` signature.
        """
        self._sweeps += 1
        if services is None:
            try:
                services = self.owner.our_services()
            except KubeAPIError as err:
                log.warning("orphan sweep cannot list Services: %s; next sweep", err)
                return []
        intents = [i for i in (read_intent(s) for s in services) if i is not None]
        pv_list = list(pvs)
        pv_names = {str(pv["metadata"].get("name")) for pv in pv_list}
        live = {str(c["metadata"].get("uid")) for c in claims}
        held: Counter[tuple[str, int]] = Counter((i.class_name, i.gid) for i in intents)
        for pv in pv_list:
            gid = gid_from_pv(pv)
            if gid is not None:
                held[((pv.get("spec") or {}).get("storageClassName") or "", gid)] += 1

        now = self.clock()
        candidates = {
            _key(i): i
            for i in intents
            if i.claim_uid not in live and pv_name(i.claim_uid) not in pv_names
        }
        self._sightings = {
            key: self._sightings.get(key) or _Sighting(self._sweeps, now) for key in candidates
        }
        self._kept_noted &= set(candidates)
        reclaimed: list[Reclaimed] = []
        for key, intent in candidates.items():
            seen = self._sightings[key]
            if seen.sweep == self._sweeps or now - seen.seen_at < self.grace_seconds:
                continue
            try:
                done = self._reclaim(intent, held)
            except Exception:  # one record's trouble must not stop the others
                log.exception("orphan sweep of Service %s/%s failed", key[0], key[1])
                continue
            if done is not None:
                del self._sightings[key]
                reclaimed.append(done)
        return reclaimed

    def next_due(self) -> float | None:
        """Seconds until a record seen orphaned becomes due (0: at the next sweep);
        None when none is waiting. Lets the caller sweep again soon after a
        sighting instead of a whole period later."""
        if not self._sightings:
            return None
        first = min(s.seen_at for s in self._sightings.values())
        return max(0.0, first + self.grace_seconds - self.clock())

    # -- one record ----------------------------------------------------------------

    def _reclaim(self, intent: Intent, held: Counter[tuple[str, int]]) -> Reclaimed | None:
        storage_class = self.owner.class_lookup(intent.class_name) if intent.class_name else None
        if (storage_class or {}).get("reclaimPolicy", "Delete") != "Delete" or not storage_class:
            self._keep(intent, storage_class)
            return None
        uid = intent.claim_uid
        if not self.owner.begin_reclaim(uid):
            return None  # a provision for it runs here: its PV is about to be written
        try:
            if not self._confirmed_gone(intent):
                return None
            return self._reclaim_confirmed(intent, storage_class, held)
        finally:
            self.owner.end_reclaim(uid)

    def _reclaim_confirmed(
        self, intent: Intent, storage_class: Obj, held: Counter[tuple[str, int]]
    ) -> Reclaimed | None:
        uid = intent.claim_uid
        known, volume = self.owner.known_outcome(uid)
        if known and volume is None:
            target = None  # this process saw every attempt: none made a volume
        else:
            try:
                target = self._target(intent, storage_class)
            except ProvisionError as err:  # messages never carry the key
                log.warning("orphan sweep cannot reach Heketi for %s: %s", intent.volume_name, err)
                return None
            try:
                if volume is None:
                    self.owner.look(target)
                    volume = self.owner.indexes.for_server(target.url).lookup(intent.volume_name)
                if volume is not None:
                    self.owner.delete_backend_volume(target, volume.id)
            except ProvisionError as err:  # delete_failure scrubs the key
                log.warning("orphan sweep could not delete %s: %s", intent.volume_name, err)
                return None
            except HeketiError as err:  # client errors never carry the key
                log.warning("orphan sweep cannot look %s up: %s", intent.volume_name, err)
                return None
        self._release(intent, volume, held)
        try:
            delete_companions(
                self.owner.kube, namespace=intent.namespace, name=intent.service, claim_uid=uid
            )
        except KubeAPIError as err:
            log.warning(
                "orphan sweep: volume of claim %s gone, Service %s/%s not yet: %s",
                uid,
                intent.namespace,
                intent.service,
                err,
            )
        if volume is None:
            log.info(
                "removed the record of claim %s (Service %s/%s): the claim is gone and no "
                "Heketi volume was made for it",
                uid,
                intent.namespace,
                intent.service,
            )
            return Reclaimed(intent.rest_url, "", intent.volume_name)
        log.info(
            "reclaimed orphaned Heketi volume %s (%s) at %s: claim %s is gone and no PV "
            "was written for it",
            volume.name,
            volume.id,
            intent.rest_url,
            uid,
        )
        return Reclaimed(intent.rest_url, volume.id, volume.name)

    def _confirmed_gone(self, intent: Intent) -> bool:
        """Claim and PV, read from the API server rather than the caches."""
        kube = self.owner.kube
        if not intent.claim_name:
            return False
        try:
            # A list by name rather than a GET: RBAC grants list and watch on claims.
            found = kube.list(
                "persistentvolumeclaims",
                intent.namespace,
                field_selector=f"metadata.name={intent.claim_name}",
            )
            uids = {str((c.get("metadata") or {}).get("uid")) for c in found.get("items") or ()}
            if intent.claim_uid in uids:
                return False  # the cache lags: the claim is there
        except KubeAPIError as err:
            log.warning("orphan sweep cannot check claim %s: %s; next sweep", intent.claim_uid, err)
            return False
        try:
            kube.get("persistentvolumes", pv_name(intent.claim_uid))
            return False  # written since the cache was read
        except KubeNotFound:
            return True
        except KubeAPIError as err:
            log.warning("orphan sweep cannot check PV %s: %s", pv_name(intent.claim_uid), err)
            return False

    def _target(self, intent: Intent, storage_class: Obj) -> HeketiTarget:
        fallback = ""
        try:
            params = parse_class_parameters(storage_class.get("parameters") or {})
            if params.rest_url == intent.rest_url:
                fallback = params.rest_user_key  # the deprecated key in the class
        except ParameterError:
            pass
        key = key_for_delete(
            self.owner.kube,
            self.owner.pool,
            url=intent.rest_url,
            user=intent.rest_user,
            secret_namespace=intent.secret_namespace,
            secret_name=intent.secret_name,
            fallback_key=fallback,
            named_by=f"Service {intent.namespace}/{intent.service}",
        )
        return HeketiTarget(intent.rest_url, intent.rest_user, key)

    def _release(
        self, intent: Intent, volume: VolumeInfo | None, held: Counter[tuple[str, int]]
    ) -> None:
        """Give back the recorded gid (and the volume's, if another) unless something
        else holds it: a PV or another record of the class, or an attempt here.
        Keeping one costs a gap in the numbering; releasing one wrongly would hand
        out a duplicate."""
        owner = self.owner
        class_name = intent.class_name
        others = owner.attempt_gids(except_claim=intent.claim_uid)
        if volume is not None:
            owner.volume_deleted(intent.rest_url, volume.id, class_name, None, intent.claim_uid)
            if not owner.first_release(volume.id):
                return  # the PV delete path gave it back already
        else:
            owner.forget_attempt(intent.claim_uid)
        gids = {intent.gid} | ({volume.gid} if volume is not None and volume.gid else set())
        for gid in gids:
            own = 1 if gid == intent.gid else 0
            if held[(class_name, gid)] - own > 0 or (class_name, gid) in others:
                continue
            owner.gids.release(class_name, gid)
            held[(class_name, gid)] -= own

    def _keep(self, intent: Intent, storage_class: Obj | None) -> None:
        key = _key(intent)
        if key in self._kept_noted:
            return
        self._kept_noted.add(key)
        why = (
            f"its StorageClass {intent.class_name} retains volumes"
            if storage_class is not None
            else f"its StorageClass {intent.class_name or '(none)'} is gone, so whether to "
            "keep its data is unknown"
        )
        log.warning(
            "keeping Heketi volume %s at %s (if it exists) and Service %s/%s although "
            "claim %s is gone and no PV names it: %s; delete them by hand if the data "
            "is not wanted",
            intent.volume_name,
            intent.rest_url,
            intent.namespace,
            intent.service,
            intent.claim_uid,
            why,
        )

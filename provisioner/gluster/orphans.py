"""The orphan sweep: Heketi volumes of ours that nothing will ever provision or delete.

How one comes about: the process creates the Heketi volume and is killed before the
PV is written, and the claim is deleted while no process runs. After a restart the
claim is gone, so no worker looks for the volume, and no PV names it, so no delete
ever reaches it.

Where the sweep starts: the intent records (``provisioner.intent``) that provision
writes in the controller's namespace *before* the Heketi create. Heketi's own volume
list is never used to guess: a ``pvc-<uid>`` volume with no record is another
cluster's (one Heketi may serve several), an operator's, or older than the records,
and is never touched (``audit`` still lists it). Nothing in a claim's namespace is
read: tenants write it.

A record whose PV exists has done its job (the PV holds the GID and names the
volume) and is removed. Another record is reclaimed when every one of these holds,
checked in this order:

* its claim uid is no live claim in the cache, and no PV ``pvc-<uid>`` is cached;
* it stayed so across two sweeps at least ``grace_seconds`` apart (see below);
* its StorageClass still exists, names our provisioner, and has ``reclaimPolicy:
  Delete``. Under Retain, a Released PV deleted by its operator leaves exactly this
  picture, and its data is meant to stay; with the class gone the policy is
  unknown. Both are kept, with one warning per process;
* the record agrees with the class: the class's Heketi URL is the recorded one and
  the volume name is what the class derives for that claim. The server, user and
  Secret used are the class's own, never the record's, and no key remembered from
  elsewhere is tried: a record can at most name a volume we would have made;
* no ``provision`` for the claim runs in this process (the two exclude each other
  per claim uid while the sweep works on it);
* the API server (not the cache) has no claim of that name with that uid, and a
  direct GET of the PV answers 404: a lagging cache cannot make the sweep take a live volume.

Then: the volume is looked up by its name (what this process knows of the claim's
attempt first; otherwise the name index, brought up to date with one list plus a
GET per id not seen before) and checked like any answer (``answers.mismatch``: the
recorded name and GID, and no PV or other claim names its id; a lookup answered
with someone else's volume must not make the sweep delete it: the record is kept
and the volume left to the operator); then deleted (Heketi's own 404 = done), the
record's hold on its GID released once Heketi confirmed, then the Endpoints, the
Service and the record go. A record with no volume (the create failed, or never
ran) just goes, with its hold on the GID.

Why a grace at all: a PV is written only by a ``provision`` that started while the
claim existed. In this process that is excluded above; with leader election no
other process runs a provision (a leader that loses its Lease exits at once), so
the only PV write that can still land is one a process sent just before it died.
The grace (default 10 s) covers that, and a create a dead process left running in
Heketi: the sweep that acts re-reads Heketi's list, so a volume that appeared
meanwhile is found and deleted. A create still running longer than the successor's
start plus the grace would appear after its record is gone; leader election's lease
expiry (15 s) adds to that margin.

Cost: one list of the records per sweep; with no candidate records, nothing else
(zero Heketi requests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from heketi_client import VolumeInfo
from heketi_client.errors import HeketiError
from provisioner.controller.contract import ProvisionError, pv_name
from provisioner.gluster.answers import Answer, Asked, mismatch
from provisioner.gluster.credentials import target_for_class
from provisioner.gluster.deleter import VolumeDeleter
from provisioner.gluster.endpoints import delete_endpoints
from provisioner.gluster.intent import Intent, IntentStore
from provisioner.gluster.ledger import Ledger
from provisioner.gluster.objects import endpoints_name, heketi_volume_name
from provisioner.gluster.parameter_values import ParameterError
from provisioner.gluster.parameters import GlusterClassParameters, parse_class_parameters
from provisioner.gluster.pool import HeketiPool, HeketiTarget, normalise_url
from provisioner.k8s.errors import KubeAPIError, KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI

__all__ = ["DEFAULT_ORPHAN_GRACE", "OrphanSweeper", "Reclaimed"]

log = structlog.get_logger(__name__)

DEFAULT_ORPHAN_GRACE = 10.0
"""Seconds a record must have stayed orphaned (over two sweeps) before it is acted on."""

Obj = dict[str, Any]
ClassLookup = Callable[[str], "Obj | None"]


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
    tried: bool = False  # acted on once: later tries wait for the regular period


@dataclass(frozen=True)
class _Plan:
    """What the StorageClass says about a record: where to go and with what."""

    params: GlusterClassParameters
    target: HeketiTarget


class OrphanSweeper:
    """Remembers when each orphaned record was first seen; ``sweep`` acts on the due.

    Sweeps are meant to run one at a time (the controller's sweep thread).
    """

    def __init__(
        self,
        *,
        kube: KubeAPI,
        provisioner_name: str,
        class_lookup: ClassLookup,
        pool: HeketiPool,
        records: IntentStore,
        ledger: Ledger,
        deleter: VolumeDeleter,
        grace_seconds: float = DEFAULT_ORPHAN_GRACE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``deleter`` deletes a volume the way PV delete does (Heketi's 404 = done)."""
        if grace_seconds < 0:
            raise ValueError("orphan grace must not be negative")
        self.kube = kube
        self.provisioner_name = provisioner_name
        self.class_lookup = class_lookup
        self.pool = pool
        self.records = records
        self.ledger = ledger
        self.deleter = deleter
        self.grace_seconds = grace_seconds
        self.clock = clock
        self._sweeps = 0
        self._sightings: dict[str, _Sighting] = {}  # claim uid -> first sighting
        self._kept_noted: set[str] = set()

    # -- the sweep -----------------------------------------------------------------

    def sweep(
        self, pvs: Iterable[Obj], claims: Iterable[Obj], storage_classes: Iterable[Obj] = ()
    ) -> list[Reclaimed]:
        """One pass over the records; returns what was cleaned up.

        ``storage_classes`` is unused (the class of a record is looked up by name)
        and kept for the ``Reconciler`` signature.
        """
        self._sweeps += 1
        try:
            intents = self.records.list()
        except KubeAPIError as err:
            log.warning("orphan_sweep.records_unreadable", error=str(err))
            return []
        pv_names = {str(pv["metadata"].get("name")) for pv in pvs}
        live = {str(c["metadata"].get("uid")) for c in claims}

        candidates: dict[str, Intent] = {}
        for intent in intents:
            if pv_name(intent.claim_uid) in pv_names:
                self._retire(intent)  # the PV holds the gid and names the volume now
            elif intent.claim_uid not in live:
                candidates[intent.claim_uid] = intent
        now = self.clock()
        self._sightings = {
            uid: self._sightings.get(uid) or _Sighting(self._sweeps, now) for uid in candidates
        }
        self._kept_noted &= set(candidates)
        reclaimed: list[Reclaimed] = []
        for uid, intent in candidates.items():
            seen = self._sightings[uid]
            if seen.sweep == self._sweeps or now - seen.seen_at < self.grace_seconds:
                continue
            seen.tried = True
            try:
                done = self._reclaim(intent)
            except Exception:  # one record's trouble must not stop the others
                log.exception("orphan_sweep.record_failed", claim_uid=uid)
                continue
            if done is not None:
                del self._sightings[uid]
                reclaimed.append(done)
        return reclaimed

    def next_due(self) -> float | None:
        """Seconds until a record seen orphaned becomes due (0: at the next sweep);
        None when none is waiting. Lets the caller sweep again soon after a
        sighting instead of a whole period later. A record that was due and is kept
        (its class is gone, a lookup did not check out, Heketi failed) does not count:
        it is tried again at the regular period, not in a loop."""
        waiting = [s.seen_at for s in self._sightings.values() if not s.tried]
        if not waiting:
            return None
        return max(0.0, min(waiting) + self.grace_seconds - self.clock())

    def _retire(self, intent: Intent) -> None:
        try:
            self.records.delete(intent)
        except KubeAPIError as err:
            log.warning("intent.retire_failed", claim_uid=intent.claim_uid, error=str(err))

    # -- one record ----------------------------------------------------------------

    def _reclaim(self, intent: Intent) -> Reclaimed | None:
        plan = self._plan(intent)
        if plan is None:
            return None
        uid = intent.claim_uid
        attempts = self.ledger.attempts
        if not attempts.begin_reclaim(uid):
            return None  # a provision for it runs here: its PV is about to be written
        try:
            if not self._confirmed_gone(intent):
                return None
            return self._reclaim_confirmed(intent, plan)
        finally:
            attempts.end_reclaim(uid)

    def _plan(self, intent: Intent) -> _Plan | None:
        """The class's own server and credentials for a record, or None (kept) when
        the class is gone, not ours, retains volumes, or disagrees with the record."""
        storage_class = self.class_lookup(intent.class_name)
        if storage_class is None:
            self._keep(intent, f"its StorageClass {intent.class_name} is gone, so whether "
                       "to keep its data is unknown")  # fmt: skip
            return None
        if storage_class.get("provisioner") != self.provisioner_name:
            self._keep(intent, f"its StorageClass {intent.class_name} now names another "
                       "provisioner")  # fmt: skip
            return None
        if storage_class.get("reclaimPolicy", "Delete") != "Delete":
            self._keep(intent, f"its StorageClass {intent.class_name} retains volumes")
            return None
        try:
            params = parse_class_parameters(storage_class.get("parameters") or {})
        except ParameterError as err:
            self._keep(intent, f"its StorageClass {intent.class_name} cannot be read: {err}")
            return None
        if normalise_url(params.rest_url) != normalise_url(intent.rest_url):
            self._keep(intent, f"its StorageClass {intent.class_name} now names Heketi at "
                       f"{params.rest_url}, not {intent.rest_url}")  # fmt: skip
            return None
        claim = {"metadata": {"uid": intent.claim_uid, "namespace": intent.claim_namespace,
                              "name": intent.claim_name}}  # fmt: skip
        expected = heketi_volume_name(params, claim)
        if expected != intent.volume_name:
            self._keep(intent, f"it names volume {intent.volume_name}, but StorageClass "
                       f"{intent.class_name} would name it {expected}")  # fmt: skip
            return None
        try:
            target = target_for_class(self.kube, params, class_name=intent.class_name)
        except ProvisionError as err:  # messages never carry the key
            log.warning(
                "orphan_sweep.no_credentials", heketi_volume=intent.volume_name, error=str(err)
            )
            return None
        return _Plan(params, target)

    def _reclaim_confirmed(self, intent: Intent, plan: _Plan) -> Reclaimed | None:
        uid = intent.claim_uid
        target = plan.target
        known, volume = self.ledger.attempts.known_outcome(uid)
        if not (known and volume is None):  # else: this process saw every attempt, none made one
            try:
                if volume is None:
                    index = self.ledger.refresh(target.url, self.pool.client(target))
                    volume = index.lookup(intent.volume_name)
                    if volume is None and index.unreadable:
                        # One of them may be this record's volume: dropping the record
                        # and its GID now could leak it. Keep both; next sweep.
                        log.warning(
                            "orphan_sweep.index_incomplete",
                            heketi_volume=intent.volume_name,
                            unreadable=len(index.unreadable),
                            server=target.url,
                        )
                        return None
                if volume is not None:
                    if not self._trusted(intent, volume):
                        return None
                    self.deleter.delete_volume(target, volume.id)
            except ProvisionError as err:  # delete_failure scrubs the key
                log.warning(
                    "orphan_sweep.delete_failed", heketi_volume=intent.volume_name, error=str(err)
                )
                return None
            except HeketiError as err:  # client errors never carry the key
                log.warning(
                    "orphan_sweep.lookup_failed", heketi_volume=intent.volume_name, error=str(err)
                )
                return None
        self._release(intent, volume)
        endpoints = endpoints_name(plan.params.endpoints_prefix, uid)
        try:
            delete_endpoints(
                self.kube, namespace=intent.claim_namespace, name=endpoints, claim_uid=uid
            )
            self.records.delete(intent)
        except KubeAPIError as err:
            log.warning(
                "orphan_sweep.cleanup_incomplete",
                claim_uid=uid,
                endpoints=f"{intent.claim_namespace}/{endpoints}",
                error=str(err),
            )
        if volume is None:
            # The claim is gone and no Heketi volume was made for it.
            log.info(
                "orphan.record_removed",
                claim=f"{intent.claim_namespace}/{intent.claim_name}",
                claim_uid=uid,
            )
            return Reclaimed(target.url, "", intent.volume_name)
        # The claim is gone and no PV was written for it.
        log.info(
            "orphan.reclaimed",
            heketi_volume=volume.name,
            volume_id=volume.id,
            server=target.url,
            claim_uid=uid,
        )
        return Reclaimed(target.url, volume.id, volume.name)

    def _confirmed_gone(self, intent: Intent) -> bool:
        """Claim and PV, read from the API server rather than the caches."""
        kube = self.kube
        try:
            # A list by name rather than a GET: RBAC grants list and watch on claims.
            found = kube.list(
                "persistentvolumeclaims",
                intent.claim_namespace,
                field_selector=f"metadata.name={intent.claim_name}",
            )
            uids = {str((c.get("metadata") or {}).get("uid")) for c in found.get("items") or ()}
            if intent.claim_uid in uids:
                return False  # the cache lags: the claim is there
        except KubeAPIError as err:
            log.warning("orphan_sweep.claim_unchecked", claim_uid=intent.claim_uid, error=str(err))
            return False
        try:
            kube.get("persistentvolumes", pv_name(intent.claim_uid))
            return False  # written since the cache was read
        except KubeNotFound:
            return True
        except KubeAPIError as err:
            log.warning("orphan_sweep.pv_unchecked", pv=pv_name(intent.claim_uid), error=str(err))
            return False

    def _trusted(self, intent: Intent, volume: VolumeInfo) -> bool:
        """Whether the volume found under the record's name is the record's to delete."""
        asked = Asked(intent.claim_uid, intent.volume_name, gid=intent.gid, what="lookup")
        found = mismatch(Answer.of(volume), asked, self.ledger.owners)
        if found is None:
            return True
        self._keep(
            intent,
            f"the volume Heketi lists under its name ({volume.id}) does not match the "
            f"record: its {found.field} {found.reason}"
            + (f" ({found.detail})" if found.detail else ""),
        )
        return False

    def _release(self, intent: Intent, volume: VolumeInfo | None) -> None:
        """Give back the record's hold on its GID, once. Other holders (a PV, another
        record: a clone and its source share a GID) hold it on by their own count."""
        ledger, uid = self.ledger, intent.claim_uid
        if volume is not None:
            ledger.volume_gone(intent.rest_url, volume.id, intent.class_name, None, uid)
            if not ledger.first_release(volume.id):
                return  # the PV delete path gave it back already
        else:
            ledger.attempts.forget(uid)
        ledger.gids.release(intent.class_name, intent.gid)

    def _keep(self, intent: Intent, why: str) -> None:
        if intent.claim_uid in self._kept_noted:
            return
        self._kept_noted.add(intent.claim_uid)
        # The claim is gone and no PV names the volume (if it exists), but deleting it
        # is not ours to decide: the operator deletes both by hand if the data is not
        # wanted.
        log.warning(
            "orphan.kept",
            heketi_volume=intent.volume_name,
            server=intent.rest_url,
            claim=f"{intent.claim_namespace}/{intent.claim_name}",
            claim_uid=intent.claim_uid,
            reason=why,
        )

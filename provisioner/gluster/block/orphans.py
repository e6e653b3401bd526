"""The orphan sweep for block volumes: created, then the claim went before any PV.

The same rules as for file volumes (``provisioner.gluster.orphans``), without GIDs:
the sweep starts from the intent records of the block provisioner name in our own
namespace, never from Heketi's list. A record whose PV exists is retired. Another is
reclaimed only when all of these hold, in this order:

* its claim uid is no live claim and no PV ``pvc-<uid>`` is cached;
* it stayed so across two sweeps at least ``grace_seconds`` apart;
* no provision of that claim runs in this process (they exclude each other);
* its StorageClass still exists, names our provisioner, has ``reclaimPolicy: Delete``
  and derives the recorded Heketi URL and volume name: the server, user and Secret
  are the class's, never the record's;
* the API server (not the cache) has no claim of that name with that uid and no PV.

Then the block volume is looked up by name (list + GET) and checked like any answer
(``answers.mismatch``: the recorded name, and no PV or other claim names its id; if
not, the record is kept and the volume left to the operator), deleted, and the
claim's CHAP Secret (only one labelled for that claim uid) and the record go.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from heketi_client.errors import HeketiError
from provisioner.controller.contract import ProvisionError, pv_name
from provisioner.gluster.answers import Answer, Asked, mismatch
from provisioner.gluster.block.lookup import find_block_volume
from provisioner.gluster.block.objects import chap_secret_name
from provisioner.gluster.block.parameters import BlockClassParameters
from provisioner.gluster.intent import Intent, IntentStore
from provisioner.gluster.objects import claim_volume_name
from provisioner.gluster.pool import HeketiPool, HeketiTarget, normalise_url
from provisioner.gluster.volume_owners import VolumeOwners
from provisioner.k8s.errors import KubeAPIError, KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI

__all__ = ["BlockOrphanSweeper"]

log = structlog.get_logger(__name__)

Obj = dict[str, Any]


class BlockOwner(Protocol):
    """What the sweep uses of the ``BlockProvisioner`` it serves."""

    kube: KubeAPI
    pool: HeketiPool
    records: IntentStore
    provisioner_name: str
    owners: VolumeOwners
    _busy: set[str]

    def class_lookup(self, name: str) -> Obj | None: ...
    def parameters(self, storage_class: Obj) -> BlockClassParameters: ...
    def target(self, params: BlockClassParameters, class_name: str) -> HeketiTarget: ...
    def delete_block_volume(self, target: HeketiTarget, volume_id: str) -> None: ...
    def delete_chap_secret(self, namespace: str, name: str, claim_uid: str) -> None: ...


class BlockOrphanSweeper:
    def __init__(
        self,
        owner: BlockOwner,
        *,
        grace_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.owner = owner
        self.grace = grace_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._reclaiming: set[str] = set()
        self._sightings: dict[str, tuple[int, float]] = {}  # uid -> (sweep number, time)
        self._tried: set[str] = set()  # due once and kept: the regular period, no loop
        self._sweeps = 0
        self._warned: set[str] = set()

    def begin_provision(self, uid: str) -> bool:
        with self._lock:
            return uid not in self._reclaiming

    def end_provision(self, uid: str) -> None:
        """Nothing to undo: the provision's own busy mark is the owner's."""

    def next_due(self) -> float | None:
        """As the file sweep's: a record due once and kept waits for the period."""
        with self._lock:
            waiting = [t for uid, (_, t) in self._sightings.items() if uid not in self._tried]
            if not waiting:
                return None
            return max(0.0, min(waiting) + self.grace - self.clock())

    def sweep(self, pvs: list[Obj], claims: list[Obj]) -> int:
        """One pass over the records; returns how many block volumes were deleted."""
        self._sweeps += 1
        records = self.owner.records.list()
        pv_names = {p["metadata"]["name"] for p in pvs}
        live = {str(c["metadata"].get("uid")) for c in claims}
        now = self.clock()
        deleted = 0
        seen: set[str] = set()
        for intent in records:
            uid = intent.claim_uid
            if pv_name(uid) in pv_names:
                self._retire(intent)
                continue
            if uid in live:
                continue
            seen.add(uid)
            with self._lock:
                first = self._sightings.setdefault(uid, (self._sweeps, now))
            if first[0] == self._sweeps or now - first[1] < self.grace:
                continue
            with self._lock:
                self._tried.add(uid)
            try:
                deleted += self._reclaim(intent)
            except (ProvisionError, HeketiError, KubeAPIError) as err:
                log.warning(
                    "block_orphan.reclaim_failed", claim_uid=uid,
                    error=getattr(err, "message", str(err))[:200],
                )  # fmt: skip
        with self._lock:
            for uid in list(self._sightings):
                if uid not in seen:
                    del self._sightings[uid]
            self._tried &= set(self._sightings)
        return deleted

    def _retire(self, intent: Intent) -> None:
        try:
            self.owner.records.delete(intent)
        except KubeAPIError as err:
            log.warning("block_intent.retire_failed", claim_uid=intent.claim_uid, error=str(err))

    def _keep(self, intent: Intent, why: str) -> None:
        if intent.claim_uid not in self._warned:
            self._warned.add(intent.claim_uid)
            log.warning("block_orphan.kept", claim_uid=intent.claim_uid, reason=why)

    def _reclaim(self, intent: Intent) -> int:
        uid = intent.claim_uid
        with self._lock:
            if uid in self.owner._busy:
                return 0
            self._reclaiming.add(uid)
        try:
            return self._reclaim_claimed(intent)
        finally:
            with self._lock:
                self._reclaiming.discard(uid)

    def _reclaim_claimed(self, intent: Intent) -> int:
        owner = self.owner
        storage_class = owner.class_lookup(intent.class_name)
        if storage_class is None or storage_class.get("provisioner") != owner.provisioner_name:
            self._keep(intent, "its StorageClass is gone or not ours: the policy is unknown")
            return 0
        if (storage_class.get("reclaimPolicy") or "Delete") != "Delete":
            self._keep(intent, "its StorageClass retains volumes")
            return 0
        params = owner.parameters(storage_class)
        pseudo_claim = {
            "metadata": {
                "uid": intent.claim_uid,
                "namespace": intent.claim_namespace,
                "name": intent.claim_name,
            }
        }
        if normalise_url(params.rest_url) != normalise_url(intent.rest_url) or (
            claim_volume_name(params.volume_name_prefix, pseudo_claim) != intent.volume_name
        ):
            self._keep(intent, "the record does not agree with its StorageClass")
            return 0
        if not self._confirmed_gone(intent):
            return 0
        target = owner.target(params, intent.class_name)
        found = find_block_volume(owner.pool.client(target), intent.volume_name)
        deleted = 0
        if found is not None:
            asked = Asked(intent.claim_uid, intent.volume_name, what="lookup")
            wrong = mismatch(Answer.of(found), asked, owner.owners)
            if wrong is not None:
                self._keep(
                    intent,
                    f"the block volume Heketi lists under its name ({found.id}) does not "
                    f"match the record: its {wrong.field} {wrong.reason}"
                    + (f" ({wrong.detail})" if wrong.detail else ""),
                )
                return 0
            owner.delete_block_volume(target, found.id)
            owner.owners.release(found.id)
            deleted = 1
            log.info(
                "block_orphan.reclaimed", claim_uid=intent.claim_uid, volume_id=found.id,
                heketi_volume=found.name,
            )  # fmt: skip
        owner.delete_chap_secret(
            intent.claim_namespace, chap_secret_name(intent.claim_uid), intent.claim_uid
        )
        owner.records.delete(intent)
        with self._lock:
            self._sightings.pop(intent.claim_uid, None)
        return deleted

    def _confirmed_gone(self, intent: Intent) -> bool:
        kube = self.owner.kube
        found = kube.list(
            "persistentvolumeclaims",
            intent.claim_namespace,
            field_selector=f"metadata.name={intent.claim_name}",
        )
        uids = {str((c.get("metadata") or {}).get("uid")) for c in found.get("items") or ()}
        if intent.claim_uid in uids:
            return False
        try:
            kube.get("persistentvolumes", pv_name(intent.claim_uid))
            return False
        except KubeNotFound:
            return True

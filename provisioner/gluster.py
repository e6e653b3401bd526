"""GlusterFS volumes through Heketi, behind the ``Provisioner`` protocol.

The intent record, written before the Heketi create
----------------------------------------------------
Provision writes, in this order (each step safe to repeat):

1. allocate a GID for the claim's class;
2. create the *intent record* (``provisioner.intent``: a ConfigMap in the
   controller's own namespace with the claim uid and name, class, Heketi URL, the
   planned volume name and the GID; never the key). If the record exists already,
   it wins: its GID is the claim's;
3. create the Heketi volume (or find the one an earlier attempt made);
4. create the Endpoints and the Service with the storage IPs Heketi reported;
5. return the PV body (the controller writes it).

What the record buys is that from the moment a Heketi volume can exist, our own API
server says so, in a place no tenant can write:

* GIDs: ``prepare`` rebuilds the allocator from PVs *and* the records, so a GID
  held by a volume whose PV was never written, or by a create still running in
  Heketi (which Heketi's list hides), is never handed out again. No Heketi listing
  is needed for that.
* Leaks: a crash between the create and the PV write, followed by the claim's
  deletion, leaves a record whose claim is gone and whose PV does not exist. The
  orphan sweep (``orphans``) starts from those records; Heketi volumes without a
  record (another cluster's, an operator's) are never touched.

Nothing in the claim's namespace (its Service, Endpoints or Secrets) is read to
decide which server, key, volume or GID to use: tenants write that namespace.

Finding an earlier attempt's volume
-----------------------------------
A claim's Heketi volume name is derived from the claim uid, so a retry can *find*
the volume an earlier attempt created instead of creating a second one. Heketi has
no lookup by name, so finding costs a list plus a GET per volume not seen before
(``volume_index``). That is paid only when this process cannot know the outcome:

* the record already existed when this process first tried the claim: another
  process may have created the volume;
* an earlier attempt here ended in ``OutcomeUnknown``/``OperationTimeout``, or in a 401
  after Heketi accepted the POST (the ``user`` role cannot follow the operation);
* Heketi said the name is already in use.

A claim whose record this process created provably has no volume yet (no process
creates one before the record exists): it goes straight to the create. A clean
failure keeps the GID reserved, since the record still names it; it goes back when
the record goes (the sweep). The controller never
works on one claim from two threads at once (its work queue hands a key to one
worker at a time), so an attempt record needs no lock of its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from heketi_client import ResponseObserver, VolumeCreateRequest, VolumeInfo
from heketi_client.errors import (
    HeketiConnectionError,
    HeketiError,
    NotFound,
    OutcomeUnknown,
    VolumeNameInUse,
)
from provisioner.annotations import ANN_PROVISIONED_BY
from provisioner.claims import ClaimError, requested_gib, validate_claim
from provisioner.classes import GlusterClassParameters, ParameterError, parse_class_parameters
from provisioner.gid import GidAllocator, GidExhausted, gid_from_pv
from provisioner.gluster_delete import VolumeDeleter
from provisioner.heketi_credentials import target_for_class
from provisioner.heketi_failures import provision_failure, user_role_hint
from provisioner.heketi_pool import DEFAULT_CONCURRENCY, HeketiPool, HeketiTarget
from provisioner.intent import Intent, IntentStore, RecordConflict
from provisioner.kubeapi import KubeAPI, KubeAPIError
from provisioner.objects import build_pv, endpoints_name, heketi_volume_name
from provisioner.orphans import DEFAULT_ORPHAN_GRACE, OrphanSweeper
from provisioner.protocol import InvalidInput, ProvisionError
from provisioner.storage_endpoints import ensure_companions
from provisioner.volume_index import VolumeIndexes

__all__ = ["GlusterProvisioner"]

log = logging.getLogger(__name__)

ClassLookup = Callable[[str], "dict[str, Any] | None"]


@dataclass
class _Attempt:
    """What this process knows about provisioning one claim."""

    class_name: str
    server: str
    gid: int | None = None
    volume: VolumeInfo | None = None
    uncertain: bool = False  # a create may have happened that we did not see
    recorded: bool = False  # the intent record on the Service holds ``gid``


class GlusterProvisioner:
    """Provision and delete Heketi volumes; see the module docstring for the hard parts."""

    def __init__(
        self,
        *,
        kube: KubeAPI,
        provisioner_name: str,
        class_lookup: ClassLookup,
        heketi_concurrency: int = DEFAULT_CONCURRENCY,
        heketi_timeout: float | tuple[float, float] = (5.0, 30.0),
        operation_timeout: float = 600.0,
        pool: HeketiPool | None = None,
        orphan_grace_seconds: float = DEFAULT_ORPHAN_GRACE,
        heketi_observer: ResponseObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        intent_namespace: str = "default",
    ) -> None:
        """``intent_namespace``: the controller's own namespace, where the intent
        records live (admins write it, tenants do not)."""
        self.kube = kube
        self.records = IntentStore(
            kube, namespace=intent_namespace, provisioner_name=provisioner_name
        )
        self.provisioner_name = provisioner_name
        self.class_lookup = class_lookup
        self.pool = pool or HeketiPool(
            concurrency=heketi_concurrency,
            timeout=heketi_timeout,
            operation_timeout=operation_timeout,
            on_response=heketi_observer,
        )
        self.gids = GidAllocator()
        self.indexes = VolumeIndexes()
        self._lock = threading.Lock()
        self._attempts: dict[str, _Attempt] = {}
        self._deleter = VolumeDeleter(self)
        self._provisioning: set[str] = set()  # claim uids with a provision() running
        self._reclaiming: set[str] = set()  # claim uids the orphan sweep is cleaning up
        self.orphans = OrphanSweeper(self, grace_seconds=orphan_grace_seconds, clock=clock)

    # -- start-up ----------------------------------------------------------------

    def prepare(self, pvs: Iterable[dict[str, Any]], claims: Iterable[dict[str, Any]]) -> None:
        """Rebuild the GID allocator from PVs and from the intent records (one list
        of ConfigMaps in our namespace). ``claims`` is not needed: a pending claim
        with a record is recognised when its record turns out to exist, one without
        a record has no volume. No Heketi request is made here."""
        for pv in pvs:
            gid = gid_from_pv(pv)
            if gid is not None:
                self.gids.observe((pv.get("spec") or {}).get("storageClassName") or "", gid)
        for intent in self.records.list():
            self.gids.observe(intent.class_name, intent.gid)

    def look(self, target: HeketiTarget) -> None:
        """Bring the server's name index up to date: one list, a GET per new id."""
        self.indexes.for_server(target.url).refresh(self.pool.client(target))

    # -- provision ---------------------------------------------------------------

    def provision(self, claim: dict[str, Any], storage_class: dict[str, Any]) -> dict[str, Any]:
        uid = str(claim["metadata"]["uid"])
        with self._lock:
            if uid in self._reclaiming:
                raise ProvisionError("the claim's earlier volume is being cleaned up; will retry")
            self._provisioning.add(uid)  # the orphan sweep must not take its volume
        try:
            return self._provision(claim, storage_class)
        finally:
            with self._lock:
                self._provisioning.discard(uid)

    def _provision(self, claim: dict[str, Any], storage_class: dict[str, Any]) -> dict[str, Any]:
        class_name = storage_class["metadata"]["name"]
        try:
            validate_claim(claim)
            size = requested_gib(claim)
        except ClaimError as err:
            raise InvalidInput(str(err)) from None
        params = self._parameters(storage_class)
        target = target_for_class(self.kube, params, class_name=class_name)
        metadata = claim["metadata"]
        uid, namespace = metadata["uid"], metadata["namespace"]

        companions = endpoints_name(params.endpoints_prefix, uid)
        volume = self._find_or_create(claim, class_name, params, target, size, companions)
        try:
            ensure_companions(
                self.kube,
                namespace=namespace,
                name=companions,
                claim_name=metadata["name"],
                hosts=volume.mount_hosts,
            )
        except KubeAPIError as err:
            raise ProvisionError(
                f"Heketi volume {volume.name} ({volume.id}) exists, but writing Endpoints "
                f"and Service {namespace}/{companions} failed: {err}; will retry"
            ) from None
        try:
            return build_pv(
                claim=claim,
                storage_class=storage_class,
                params=params,
                provisioner_name=self.provisioner_name,
                volume_id=volume.id,
                volume_name=volume.name,
                size_gib=volume.size,
                gid=volume.gid,
                endpoints_name=companions,
                resturl=target.url,
                secret_namespace=params.secret_namespace,
                secret_name=params.secret_name,
                rest_user=params.rest_user,
            )
        except Exception as err:  # a bug, not a condition: do not leave the volume behind
            log.exception("building the PV for claim %s/%s failed", namespace, metadata["name"])
            self._undo(target, uid, class_name, volume)
            raise ProvisionError(f"internal error building the PV: {err}", retry=False) from err

    def _parameters(self, storage_class: dict[str, Any]) -> GlusterClassParameters:
        name = storage_class["metadata"]["name"]
        try:
            params = parse_class_parameters(storage_class.get("parameters") or {})
        except ParameterError as err:
            raise InvalidInput(f"{err} (StorageClass {name})") from None
        for warning in params.warnings:
            log.warning("StorageClass %s: %s", name, warning)
        return params

    def _find_or_create(
        self,
        claim: dict[str, Any],
        class_name: str,
        params: GlusterClassParameters,
        target: HeketiTarget,
        size: int,
        companions: str,
    ) -> VolumeInfo:
        uid = claim["metadata"]["uid"]
        name = heketi_volume_name(params, claim)
        durability = params.durability.to_heketi()

        def failure(err: HeketiError, doing: str = "creating the volume") -> ProvisionError:
            return provision_failure(
                err, url=target.url, user=target.user, key=target.key,
                size_gib=size, durability=str(durability), doing=doing,
            )  # fmt: skip

        with self._lock:
            attempt = self._attempts.get(uid)
            if attempt is None or attempt.server != target.url:
                attempt = self._attempts[uid] = _Attempt(class_name, target.url)
        if attempt.volume is not None:
            return attempt.volume
        if not attempt.recorded:
            intent = Intent(
                provisioner=self.provisioner_name,
                claim_namespace=claim["metadata"]["namespace"],
                claim_name=claim["metadata"]["name"],
                claim_uid=uid,
                class_name=class_name,
                rest_url=target.url,
                volume_name=name,
                gid=0,
            )
            self._record_intent(attempt, intent, params)
        index = self.indexes.for_server(target.url)
        if attempt.uncertain:
            try:
                self.look(target)
            except HeketiError as err:
                doing = "looking for a volume an earlier attempt may have made"
                raise failure(err, doing) from None
            found = index.lookup(name)
            if found is not None:
                return self._adopt(uid, attempt, found)
        assert attempt.gid is not None
        request = VolumeCreateRequest(
            size=size,
            name=name,
            clusters=params.cluster_ids,
            durability=durability,
            gid=attempt.gid,
            gluster_volume_options=params.volume_options,
            snapshot_factor=params.snap_factor,
        )
        client = self.pool.client(target)
        try:
            with self.pool.slot(target.url):
                volume = client.create_volume(request)
        except VolumeNameInUse as err:
            # An earlier attempt (ours, or a previous process's) holds the name.
            try:
                self.look(target)
            except HeketiError as look_err:
                attempt.uncertain = True
                raise failure(look_err, "looking for the volume holding the name") from None
            found = index.lookup(name)
            if found is not None:
                return self._adopt(uid, attempt, found)
            attempt.uncertain = True  # still being created: visible once it is done
            raise failure(err) from None
        except HeketiError as err:
            if _may_have_happened(err, target.user):
                attempt.uncertain = True
            # Either way the gid stays reserved: the intent record names it.
            raise failure(err) from None
        attempt.volume = volume
        attempt.uncertain = False
        index.add(volume)
        log.info(
            "created Heketi volume %s (%s) gid %s for claim %s",
            volume.name,
            volume.id,
            volume.gid,
            uid,
        )
        return volume

    def _record_intent(
        self, attempt: _Attempt, planned: Intent, params: GlusterClassParameters
    ) -> None:
        """Allocate the gid and write the record (step 2 of the module docstring).

        Afterwards ``attempt.gid`` is the gid the record holds, and
        ``attempt.uncertain`` says whether a volume may exist already.
        """
        if attempt.gid is None:
            try:
                attempt.gid = self.gids.allocate(attempt.class_name, params.gid_min, params.gid_max)
            except GidExhausted as err:
                raise ProvisionError(str(err)) from None
        intent = replace(planned, gid=attempt.gid)
        where = f"ConfigMap {self.records.namespace}/{intent.name}"
        try:
            recorded, created = self.records.write(intent)
        except KubeAPIError as err:
            # The record may exist now (the answer was lost): keep the gid reserved.
            raise ProvisionError(
                f"writing {where} (the record made before the Heketi volume is created) "
                f"failed: {err}; will retry"
            ) from None
        except RecordConflict as err:
            raise ProvisionError(str(err)) from None
        if not created:
            # Written before this process tried the claim: another attempt may have
            # made the volume. Its gid is the claim's.
            attempt.uncertain = True
            if recorded.gid != attempt.gid:
                self.gids.observe(attempt.class_name, recorded.gid)
                self.gids.release(attempt.class_name, attempt.gid)
                attempt.gid = recorded.gid
        attempt.recorded = True

    def _adopt(self, uid: str, attempt: _Attempt, found: VolumeInfo) -> VolumeInfo:
        """Take over a volume an earlier attempt created: its id and its gid.

        If the volume has another gid than the record (made by an earlier version,
        whose record lived elsewhere), the volume's gid is the one its files carry,
        so the PV must say it; both stay reserved until the record goes. But a gid
        this process already holds for something else is never shared: two volumes
        of a class with one gid would let each one's pods write the other's files.
        """
        if found.gid and found.gid != attempt.gid:
            if self.gids.is_used(attempt.class_name, found.gid):
                raise ProvisionError(
                    f"Heketi volume {found.name} ({found.id}) made for this claim by an "
                    f"earlier attempt has GID {found.gid}, which another volume of "
                    f"StorageClass {attempt.class_name} holds; not binding it (delete that "
                    "Heketi volume to provision afresh)",
                    retry=False,
                )
            self.gids.observe(attempt.class_name, found.gid)
            attempt.gid = found.gid
        attempt.volume = found
        attempt.uncertain = False
        log.info(
            "found Heketi volume %s (%s) from an earlier attempt for claim %s",
            found.name,
            found.id,
            uid,
        )
        return found

    def _undo(self, target: HeketiTarget, uid: str, class_name: str, volume: VolumeInfo) -> None:
        client = self.pool.client(target)
        try:
            with self.pool.slot(target.url):
                client.delete_volume(volume.id)
        except NotFound:
            pass
        except HeketiError as err:
            log.error(
                "could not delete Heketi volume %s after a failed provision: %s", volume.id, err
            )
            return  # keep the gid and the record: the volume may still exist
        # The gid stays reserved: the intent record on the Service still names it.
        self.volume_deleted(target.url, volume.id, class_name, None, uid)

    def volume_deleted(
        self, url: str, volume_id: str, class_name: str, gid: int | None, claim_uid: str
    ) -> None:
        """Bookkeeping once Heketi confirmed the volume gone: index, gid, attempt."""
        index = self.indexes.existing(url)
        if index is not None:
            index.remove(volume_id)
        if gid:
            self.gids.release(class_name, gid)
        with self._lock:
            attempt = self._attempts.get(claim_uid)
            if attempt is not None and (attempt.volume is None or attempt.volume.id == volume_id):
                del self._attempts[claim_uid]

    # -- orphan sweep (see ``orphans``) --------------------------------------------

    def reconcile(
        self,
        pvs: Iterable[dict[str, Any]],
        claims: Iterable[dict[str, Any]],
        storage_classes: Iterable[dict[str, Any]],
    ) -> int:
        """Sweep the intent records; returns how many Heketi volumes were deleted."""
        done = self.orphans.sweep(pvs, claims, storage_classes)
        return sum(1 for r in done if r.volume_id)

    def next_reconcile_in(self) -> float | None:
        """When a record seen orphaned becomes due (see ``OrphanSweeper.next_due``)."""
        return self.orphans.next_due()

    def in_flight_claims(self) -> set[str]:
        """Claim uids whose ``provision`` is running in this process right now."""
        with self._lock:
            return set(self._provisioning)

    def begin_reclaim(self, claim_uid: str) -> bool:
        """Reserve a claim uid for the sweep; False while a provision for it runs.
        Until ``end_reclaim``, a provision for it fails with a retriable error."""
        with self._lock:
            if claim_uid in self._provisioning or claim_uid in self._reclaiming:
                return False
            self._reclaiming.add(claim_uid)
            return True

    def end_reclaim(self, claim_uid: str) -> None:
        with self._lock:
            self._reclaiming.discard(claim_uid)

    def known_outcome(self, claim_uid: str) -> tuple[bool, VolumeInfo | None]:
        """(True, volume or None) when this process saw every attempt for the claim
        since its record was written; (False, None) when only Heketi can tell."""
        with self._lock:
            attempt = self._attempts.get(claim_uid)
        if attempt is None or not attempt.recorded:
            return False, None
        if attempt.volume is not None:
            return True, attempt.volume
        return (not attempt.uncertain), None

    def forget_attempt(self, claim_uid: str) -> None:
        """Drop what this process knows of a claim (its record is being removed)."""
        with self._lock:
            self._attempts.pop(claim_uid, None)

    def first_release(self, volume_id: str) -> bool:
        """True the first time a volume's gid is given back (PV delete or sweep)."""
        return self._deleter.first_release(volume_id)

    def attempt_gids(self, *, except_claim: str = "") -> set[tuple[str, int]]:
        """(class, gid) pairs held by this process's attempt records."""
        with self._lock:
            return {
                (a.class_name, a.gid)
                for uid, a in self._attempts.items()
                if a.gid is not None and uid != except_claim
            }

    def delete_backend_volume(self, target: HeketiTarget, volume_id: str) -> None:
        """Delete one Heketi volume the way PV delete does (404 = done)."""
        self._deleter.delete_volume(target, volume_id)

    # -- delete / repair ---------------------------------------------------------

    def delete(self, pv: dict[str, Any]) -> None:
        self._deleter.delete(pv)

    def repair(self, pv: dict[str, Any]) -> bool:
        annotations = (pv.get("metadata") or {}).get("annotations") or {}
        if annotations.get(ANN_PROVISIONED_BY) != self.provisioner_name:
            return False
        if (pv.get("status") or {}).get("phase") != "Bound":
            return False
        return self._deleter.repair(pv)


def _may_have_happened(err: HeketiError, user: str) -> bool:
    """Whether a failed create may still have left a volume behind."""
    if isinstance(err, OutcomeUnknown):
        return True
    if isinstance(err, HeketiConnectionError):
        return err.request_sent
    # The "user" role may POST /volumes but not poll the queue: the 401 comes after
    # Heketi accepted the create.
    return user_role_hint(err, user)

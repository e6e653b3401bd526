"""GlusterFS volumes through Heketi, behind the ``Provisioner`` protocol.

Idempotency, which is what most of this module is about
--------------------------------------------------------
A claim's Heketi volume name is derived from the claim uid, so a retry can *find* the
volume an earlier attempt created instead of creating a second one. Heketi has no
lookup by name, so finding costs a list plus a GET per volume (``volume_index``).
That cost is paid only when this process cannot know the outcome of an earlier
attempt:

* the claim was pending when the process started (``prepare`` gets those claims):
  a previous process may have created the volume and died before the PV was written;
* an earlier attempt here ended in ``OutcomeUnknown``/``OperationTimeout``, or in a 401
  after Heketi accepted the POST (the ``user`` role cannot follow the operation);
* Heketi said the name is already in use.

Every other claim goes straight to a create: this process saw every earlier attempt
for it and knows each one either failed cleanly or produced the volume recorded in
``_attempts``. The controller never works on one claim from two threads at once (its
work queue hands a key to one worker at a time), so an attempt record needs no lock
of its own.

GIDs after a restart
--------------------
A previous process may have created a volume with gid X and died before writing the
PV; rebuilding the allocator from PVs alone would hand X out again. Whenever a claim
of ours was pending at start, ``prepare`` builds the name index of its Heketi server
and marks the gid of *every* volume there as used in every class on that server,
before any worker allocates. That is conservative (a gid another class's volume
holds is skipped too), which costs nothing but a gap in the numbering. If Heketi is
unreachable during ``prepare``, the server stays flagged and the first allocation on
it builds the index first. Two gaps remain, both narrow: a crash that leaves a volume
*and* no pending claim (the claim was deleted meanwhile) leaves an orphan in Heketi
that no PV and no index accounts for; and a create the dead process left *in flight*
is hidden by Heketi until it finishes, so an index built during that window misses
its gid. Leader election makes the second unlikely: a successor starts only after the
old lease expires, by which time such a create has usually finished. The first gap is
closed by ``reconcile`` (the orphan sweep in ``orphans``), which deletes such volumes
once a grace period shows that no process is still about to write their PV.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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
from provisioner.claims import ClaimError, requested_gib, storage_class_name, validate_claim
from provisioner.classes import GlusterClassParameters, ParameterError, parse_class_parameters
from provisioner.gid import GidAllocator, GidExhausted, gid_from_pv
from provisioner.gluster_delete import VolumeDeleter
from provisioner.heketi_credentials import target_for_class
from provisioner.heketi_failures import provision_failure, user_role_hint
from provisioner.heketi_pool import DEFAULT_CONCURRENCY, HeketiPool, HeketiTarget
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
    ) -> None:
        self.kube = kube
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
        self._pending_at_start: set[str] = set()
        self._index_required: set[str] = set()  # servers whose gids must be marked first
        self._class_servers: dict[str, str] = {}  # class name -> Heketi URL
        self._deleter = VolumeDeleter(self)
        self._provisioning: set[str] = set()  # claim uids with a provision() running
        self.orphans = OrphanSweeper(self, grace_seconds=orphan_grace_seconds, clock=clock)

    # -- start-up ----------------------------------------------------------------

    def prepare(self, pvs: Iterable[dict[str, Any]], claims: Iterable[dict[str, Any]]) -> None:
        for pv in pvs:
            gid = gid_from_pv(pv)
            if gid is not None:
                self.gids.observe((pv.get("spec") or {}).get("storageClassName") or "", gid)
        servers: dict[str, HeketiTarget] = {}
        for claim in claims:
            if (claim.get("spec") or {}).get("volumeName"):
                continue
            class_name = storage_class_name(claim) or ""
            storage_class = self.class_lookup(class_name) if class_name else None
            if not storage_class or storage_class.get("provisioner") != self.provisioner_name:
                continue
            self._pending_at_start.add(claim["metadata"]["uid"])
            try:
                params = parse_class_parameters(storage_class.get("parameters") or {})
                target = target_for_class(self.kube, params, class_name=class_name)
            except (ParameterError, ProvisionError):
                continue  # the claim gets its event when a worker reaches it
            self._class_servers[class_name] = target.url
            servers.setdefault(target.url, target)
        for url, target in servers.items():
            with self._lock:
                self._index_required.add(url)
            try:
                self._ensure_index(target)
            except HeketiError as err:
                log.warning(
                    "cannot index Heketi volumes at %s yet (%s); the first "
                    "provision on that server will",
                    url,
                    err,
                )

    def _ensure_index(self, target: HeketiTarget, *, refresh: bool = False) -> None:
        index = self.indexes.for_server(target.url)
        client = self.pool.client(target)
        if refresh:
            index.refresh(client)
        else:
            index.ensure_built(client)
        self._mark_index_gids(target.url)

    def _mark_index_gids(self, url: str) -> None:
        index = self.indexes.existing(url)
        if index is None or not index.built:
            return
        with self._lock:
            classes = [c for c, server in self._class_servers.items() if server == url]
        for gid in index.gids():
            for class_name in classes:
                self.gids.observe(class_name, gid)

    # -- provision ---------------------------------------------------------------

    def provision(self, claim: dict[str, Any], storage_class: dict[str, Any]) -> dict[str, Any]:
        uid = str(claim["metadata"]["uid"])
        with self._lock:
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
        with self._lock:
            self._class_servers[class_name] = target.url
        metadata = claim["metadata"]
        uid, namespace = metadata["uid"], metadata["namespace"]

        volume = self._find_or_create(claim, class_name, params, target, size)
        companions = endpoints_name(params.endpoints_prefix, uid)
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
                f"Heketi volume {volume.name} ({volume.id}) exists, but writing Endpoints/"
                f"Service {namespace}/{companions} failed: {err}; will retry"
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
            must_look = attempt.uncertain or uid in self._pending_at_start
            must_index = target.url in self._index_required
        if attempt.volume is not None:
            return attempt.volume
        index = self.indexes.for_server(target.url)
        try:
            if must_look or must_index:
                self._ensure_index(target, refresh=attempt.uncertain)
        except HeketiError as err:
            raise failure(err, "looking for a volume an earlier attempt may have made") from None
        if must_look:
            found = index.lookup(name)
            if found is not None:
                return self._adopt(uid, attempt, found)
            with self._lock:
                self._pending_at_start.discard(uid)

        if attempt.gid is None:
            try:
                attempt.gid = self.gids.allocate(class_name, params.gid_min, params.gid_max)
            except GidExhausted as err:
                raise ProvisionError(str(err)) from None
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
                self._ensure_index(target, refresh=True)
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
                attempt.uncertain = True  # the gid stays reserved for that volume
            elif not attempt.uncertain:
                self._forget_attempt(uid, attempt)  # Heketi made nothing: give the gid back
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

    def _adopt(self, uid: str, attempt: _Attempt, found: VolumeInfo) -> VolumeInfo:
        """Take over a volume an earlier attempt created: its id and its gid."""
        if found.gid:
            self.gids.observe(attempt.class_name, found.gid)
        if attempt.gid is not None and attempt.gid != found.gid:
            self.gids.release(attempt.class_name, attempt.gid)
        attempt.gid = found.gid or attempt.gid
        attempt.volume = found
        attempt.uncertain = False
        with self._lock:
            self._pending_at_start.discard(uid)
        log.info(
            "found Heketi volume %s (%s) from an earlier attempt for claim %s",
            found.name,
            found.id,
            uid,
        )
        return found

    def _forget_attempt(self, uid: str, attempt: _Attempt) -> None:
        if attempt.gid is not None:
            self.gids.release(attempt.class_name, attempt.gid)
        with self._lock:
            if self._attempts.get(uid) is attempt:
                del self._attempts[uid]

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
        self.volume_deleted(target.url, volume.id, class_name, volume.gid, uid)

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
        return len(self.orphans.sweep(pvs, claims, storage_classes))

    def in_flight_claims(self) -> set[str]:
        """Claim uids whose ``provision`` is running in this process right now."""
        with self._lock:
            return set(self._provisioning)

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

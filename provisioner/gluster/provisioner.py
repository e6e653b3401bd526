"""GlusterFS volumes through Heketi, behind the controller's contract.

``GlusterProvisioner`` is a ``Provisioner`` and has every optional capability:
``Preparer`` (GIDs from PVs and records), ``Repairer`` (the endpoints: the Endpoints
+ Service pair a glusterfs PV mounts through), ``Reconciler`` (the orphan sweep),
``Gate`` (no glusterfs PVs on 1.26+), ``Expander`` (Heketi's expand, never twice) and
``Cloner`` (Heketi's clone, crash-safe like a create). Its parts are here: ``creator``
(provision), ``cloner`` (clone), ``expander`` (grow), ``deleter`` (delete, repair),
``orphans`` (the sweep, clones included: their records look like any other), sharing
a ``ledger``.

The intent record, written before the Heketi create
----------------------------------------------------
Provision writes, in this order (each step safe to repeat):

1. allocate a GID for the claim's class;
2. create the *intent record* (``intent``: a ConfigMap in the controller's own
   namespace with the claim uid and name, class, Heketi URL, the planned volume
   name and the GID; never the key). If the record exists already, it wins: its GID
   is the claim's;
3. create the Heketi volume (or find the one an earlier attempt made: ``creator``);
4. create the endpoints with the storage IPs Heketi reported;
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
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog

from heketi_client import HeketiError, ResponseObserver, VolumeInfo
from provisioner.controller.contract import (
    InvalidInput,
    Outcome,
    ProvisionError,
    WatchedKind,
    pv_name,
)
from provisioner.controller.keys import ANN_PROVISIONED_BY
from provisioner.controller.predicates import class_name_of
from provisioner.gluster.annotations import LABEL_PROVISIONED_FOR_PVC
from provisioner.gluster.claims import ClaimError, requested_gib, validate_claim
from provisioner.gluster.cloner import VolumeCloner
from provisioner.gluster.creator import VolumeCreator
from provisioner.gluster.credentials import target_for_class
from provisioner.gluster.deleter import VolumeDeleter
from provisioner.gluster.endpoints import ensure_endpoints
from provisioner.gluster.expander import VolumeExpander
from provisioner.gluster.failures import provision_failure, refused_credentials
from provisioner.gluster.gate import GlusterfsGate, glusterfs_mountable
from provisioner.gluster.gid import gid_from_pv
from provisioner.gluster.intent import IntentStore
from provisioner.gluster.ledger import Ledger
from provisioner.gluster.objects import build_pv, delete_info, endpoints_name, endpoints_of
from provisioner.gluster.orphans import DEFAULT_ORPHAN_GRACE, OrphanSweeper
from provisioner.gluster.parameter_values import ParameterError
from provisioner.gluster.parameters import GlusterClassParameters, parse_class_parameters
from provisioner.gluster.pool import DEFAULT_CONCURRENCY, HeketiPool, HeketiTarget
from provisioner.gluster.secret_cache import DEFAULT_SECRET_TTL, SecretKeys
from provisioner.gluster.storage_addresses import StorageAddresses, not_ips
from provisioner.gluster.volume_owners import VolumeOwners
from provisioner.k8s.errors import KubeAPIError
from provisioner.k8s.kubeapi import KubeAPI
from provisioner.k8s.versions import ServerVersion

__all__ = ["GlusterProvisioner"]

log = structlog.get_logger(__name__)

Obj = dict[str, Any]
ClassLookup = Callable[[str], "Obj | None"]

WATCHED = (
    WatchedKind("endpoints", LABEL_PROVISIONED_FOR_PVC),
    WatchedKind("services", LABEL_PROVISIONED_FOR_PVC),
)
"""The endpoints of our PVs: both objects carry our label."""


INTREE_PROVISIONER = "kubernetes.io/glusterfs"
"""The in-tree plugin's provisioner name, which ``--provisioner-name`` takes over."""


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
        assume_glusterfs_plugin: bool = False,
        secret_ttl: float = DEFAULT_SECRET_TTL,
        volume_owners: VolumeOwners | None = None,
    ) -> None:
        """``intent_namespace``: the controller's own namespace, where the intent
        records live (admins write it, tenants do not). ``assume_glusterfs_plugin``
        opens the version gate on 1.26+. ``secret_ttl``: how long a key read from a
        Secret is used before the Secret is read again (``secret_cache``).
        ``volume_owners``: which PV names which Heketi volume, kept current from the
        PV informer by whoever owns it (``app``); without one, ``prepare``'s PVs and
        this process's own provisions are all it knows."""
        self.kube = kube
        self.secrets = SecretKeys(kube, ttl=secret_ttl, clock=clock)
        self.provisioner_name = provisioner_name
        self.class_lookup = class_lookup
        self.records = IntentStore(
            kube, namespace=intent_namespace, provisioner_name=provisioner_name
        )
        self.pool = pool or HeketiPool(
            concurrency=heketi_concurrency,
            timeout=heketi_timeout,
            operation_timeout=operation_timeout,
            on_response=heketi_observer,
        )
        self.ledger = Ledger(volume_owners)
        self.storage_addresses = StorageAddresses(clock=clock)
        self.creator = VolumeCreator(
            provisioner_name=provisioner_name, pool=self.pool, records=self.records,
            ledger=self.ledger,
        )  # fmt: skip
        self.deleter = VolumeDeleter(
            kube=kube, pool=self.pool, records=self.records, ledger=self.ledger,
            class_lookup=class_lookup, secrets=self.secrets,
        )  # fmt: skip
        self.expander = VolumeExpander(pool=self.pool, deleter=self.deleter)
        self.cloner = VolumeCloner(
            provisioner_name=provisioner_name, pool=self.pool, records=self.records,
            ledger=self.ledger, expander=self.expander,
        )  # fmt: skip
        self.sweeper = OrphanSweeper(
            kube=kube, provisioner_name=provisioner_name, class_lookup=class_lookup,
            pool=self.pool, records=self.records, ledger=self.ledger, deleter=self.deleter,
            grace_seconds=orphan_grace_seconds, clock=clock,
        )  # fmt: skip
        self.version_gate = GlusterfsGate(assume_plugin=assume_glusterfs_plugin)

    # -- Preparer ------------------------------------------------------------------

    def prepare(self, pvs: Iterable[Obj], claims: Iterable[Obj]) -> None:
        """Rebuild the GID holders from PVs and from the intent records of claims that
        have no PV (one list of ConfigMaps in our namespace), and the index of which
        PV names which Heketi volume. Each holder counts: a clone's PV or record holds
        its source's GID beside the source's PV, so the GID stays held until both are
        gone. A record whose PV exists is the same holder as the PV. ``claims`` is
        not needed: a pending claim with a record is recognised when its record turns
        out to exist, one without a record has no volume. No Heketi request."""
        pvs = list(pvs)
        if not self.ledger.owners.attached:  # else the informer has fed it already
            self.ledger.owners.add_pvs(pvs)
        gids = self.ledger.gids
        names: set[str] = set()
        for pv in pvs:
            names.add(str((pv.get("metadata") or {}).get("name")))
            gid = gid_from_pv(pv)
            if gid is not None:
                gids.share(class_name_of(pv) or "", gid)
        for intent in self.records.list():
            if pv_name(intent.claim_uid) not in names:
                gids.share(intent.class_name, intent.gid)

    # -- Gate ----------------------------------------------------------------------

    def gate(self, storage_class: Obj, server: ServerVersion) -> str | None:
        return self.version_gate.message(storage_class, server)

    # -- Takeover ------------------------------------------------------------------

    def plugin_removed(self, server: ServerVersion) -> bool:
        """Serving ``kubernetes.io/glusterfs`` on a server without its plugin (1.26+)."""
        return self.provisioner_name == INTREE_PROVISIONER and not glusterfs_mountable(
            server.release
        )

    # -- Provisioner ---------------------------------------------------------------

    def provision(self, claim: Obj, storage_class: Obj) -> Obj:
        return self._exclusive(claim, storage_class, None)

    # -- Cloner --------------------------------------------------------------------

    def clone(self, claim: Obj, storage_class: Obj, source_pv: Obj) -> Obj:
        """Provision ``claim`` as a Heketi clone of ``source_pv``'s volume (``cloner``)."""
        return self._exclusive(claim, storage_class, source_pv)

    # -- Expander ------------------------------------------------------------------

    def expand(self, pv: Obj, requested_bytes: int) -> str:
        return self.expander.expand(pv, requested_bytes)

    def resized_by_server(self, server: ServerVersion) -> bool:
        """Up to 1.25 kube-controller-manager's in-tree glusterfs plugin grows
        ``spec.glusterfs`` PVs itself (with the class's parameters); growing them here
        as well would race it on Heketi's increment-based expand."""
        return glusterfs_mountable(server.release)

    def _exclusive(self, claim: Obj, storage_class: Obj, source_pv: Obj | None) -> Obj:
        uid = str(claim["metadata"]["uid"])
        attempts = self.ledger.attempts
        if not attempts.begin_provision(uid):  # the orphan sweep must not take its volume
            raise ProvisionError("the claim's earlier volume is being cleaned up; will retry")
        try:
            return self._provision(claim, storage_class, source_pv)
        finally:
            attempts.end_provision(uid)

    def _provision(self, claim: Obj, storage_class: Obj, source_pv: Obj | None) -> Obj:
        class_name = storage_class["metadata"]["name"]
        try:
            validate_claim(claim, data_source_allowed=source_pv is not None)
            size = requested_gib(claim)
        except ClaimError as err:
            raise InvalidInput(str(err)) from None
        params = self._parameters(storage_class)
        target = target_for_class(self.kube, params, class_name=class_name, secrets=self.secrets)
        metadata = claim["metadata"]
        uid, namespace = metadata["uid"], metadata["namespace"]

        endpoints = endpoints_name(params.endpoints_prefix, uid)
        try:
            volume = self._make_volume(claim, class_name, params, target, source_pv, size)
        except ProvisionError as err:
            fresh = self._reread_key(err, target, params, class_name)
            if fresh is None:
                raise
            target = fresh
            volume = self._make_volume(claim, class_name, params, target, source_pv, size)
        bad = [] if params.nfs else not_ips(volume.mount_hosts)
        if bad:  # the topology changed since the check: nothing to write yet, try again
            raise ProvisionError(
                f"Heketi volume {volume.name} ({volume.id}) lists mount host "
                f'"{bad[0][:64]}", which is not an IP address; Endpoints accept only IPs '
                "(fix the node's storage hostname in Heketi's topology); will retry"
            )
        try:
            if params.nfs:
                pass  # spec.nfs names the server itself: no Endpoints or Service
            else:
                ensure_endpoints(
                    self.kube,
                    namespace=namespace,
                    name=endpoints,
                    claim_name=metadata["name"],
                    claim_uid=uid,
                    hosts=volume.mount_hosts,
                )
        except KubeAPIError as err:
            raise ProvisionError(
                f"Heketi volume {volume.name} ({volume.id}) exists, but writing Endpoints "
                f"and Service {namespace}/{endpoints} failed: {err}; will retry"
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
                endpoints_name=endpoints,
                resturl=target.url,
                secret_namespace=params.secret_namespace,
                secret_name=params.secret_name,
                rest_user=params.rest_user,
                clone_of=None if source_pv is None else delete_info(source_pv).volume_id,
            )
        except Exception as err:  # a bug, not a condition: do not leave the volume behind
            log.exception("provision.build_pv_failed")
            self.creator.undo(target, uid, class_name, volume)
            raise ProvisionError(
                f"internal error building the PV: {err}", outcome=Outcome.WAIT_FOR_CHANGE
            ) from err

    def _make_volume(
        self,
        claim: Obj,
        class_name: str,
        params: GlusterClassParameters,
        target: HeketiTarget,
        source_pv: Obj | None,
        size: int,
    ) -> VolumeInfo:
        """Create the claim's volume (or find the one an earlier attempt made)."""
        if source_pv is None:
            if not params.nfs:  # NFS mounts go to nfsserver, not to the nodes' addresses
                self._check_storage_addresses(target, params, size)
            return self.creator.find_or_create(claim, class_name, params, target, size)
        # a clone lives on its source's nodes, whose addresses were checked then
        return self.cloner.find_or_clone(claim, class_name, params, target, source_pv, size)

    def _reread_key(
        self,
        err: ProvisionError,
        target: HeketiTarget,
        params: GlusterClassParameters,
        class_name: str,
    ) -> HeketiTarget | None:
        """After Heketi refused a cached key: the Secret read again at once, if it
        now holds another key (rotated); None when trying again cannot help."""
        if not refused_credentials(err) or not self.secrets.invalidate(
            params.secret_namespace, params.secret_name
        ):
            return None
        fresh = target_for_class(self.kube, params, class_name=class_name, secrets=self.secrets)
        if fresh.key == target.key:
            return None
        log.info("secret.key_changed", storage_class=class_name, heketi=target.url)
        return fresh

    def _check_storage_addresses(
        self, target: HeketiTarget, params: GlusterClassParameters, size: int
    ) -> None:
        """Refuse before the create when a node's storage address is not an IP
        (``storage_addresses``): the volume could never be mounted."""
        try:
            problem = self.storage_addresses.problem(
                target.url, self.pool.client(target), params.cluster_ids
            )
        except HeketiError as err:
            raise provision_failure(
                err, url=target.url, user=target.user, key=target.key, size_gib=size,
                durability=str(params.durability.to_heketi()),
                doing="reading the storage addresses of the Gluster nodes",
            ) from None  # fmt: skip
        if problem is not None:
            raise InvalidInput(problem)

    def _parameters(self, storage_class: Obj) -> GlusterClassParameters:
        name = storage_class["metadata"]["name"]
        try:
            params = parse_class_parameters(storage_class.get("parameters") or {})
        except ParameterError as err:
            raise InvalidInput(f"{err} (StorageClass {name})") from None
        for warning in params.warnings:
            log.warning("storage_class.warning", storage_class=name, warning=warning)
        return params

    def delete(self, pv: Obj) -> None:
        self.deleter.delete(pv)

    # -- Repairer ------------------------------------------------------------------

    def watched_kinds(self) -> Sequence[WatchedKind]:
        return WATCHED

    def watched_key(self, pv: Obj) -> str | None:
        where = endpoints_of(pv)
        return None if where is None else f"{where[0]}/{where[1]}"

    def repair(self, pv: Obj) -> bool:
        annotations = (pv.get("metadata") or {}).get("annotations") or {}
        if annotations.get(ANN_PROVISIONED_BY) != self.provisioner_name:
            return False
        if (pv.get("status") or {}).get("phase") != "Bound":
            return False
        return self.deleter.repair(pv)

    # -- Reconciler (the orphan sweep) ---------------------------------------------

    def reconcile(
        self, pvs: Iterable[Obj], claims: Iterable[Obj], storage_classes: Iterable[Obj]
    ) -> int:
        """Sweep the intent records; returns how many Heketi volumes were deleted."""
        done = self.sweeper.sweep(pvs, claims, storage_classes)
        return sum(1 for r in done if r.volume_id)

    def next_reconcile_in(self) -> float | None:
        """When a record seen orphaned becomes due (see ``OrphanSweeper.next_due``)."""
        return self.sweeper.next_due()

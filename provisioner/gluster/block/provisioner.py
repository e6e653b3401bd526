"""gluster-block volumes through Heketi, behind the controller's contract.

``BlockProvisioner`` is a ``Provisioner`` and a ``Reconciler`` (the orphan sweep of
``orphans``); it takes no GIDs, keeps nothing beside its PVs that a repair could
restore (the CHAP Secret is written once, before the PV), and is never gated by the
server version (an iSCSI PV mounts on every version).

Provision, each step safe to repeat:

1. validate the claim (RWO/ROX only) and the class; read the Heketi key;
2. write the intent record (``intent``, as for file volumes, GID 0): from then on
   our namespace says a block volume may exist for the claim;
3. create the block volume named after the claim uid, or find the one an earlier
   attempt made (list + GET by name: only when this process cannot know);
4. check Heketi's answer: its name, id and size as every answer
   (``provisioner.gluster.answers``: no PV or other claim names the id), then the
   iSCSI fields (``block.answers``). Nothing is written from a bad one;
5. with CHAP, create the ``kubernetes.io/iscsi-chap`` Secret in the claim's namespace
   from Heketi's answer (never from what is in that namespace already);
6. return the PV body.

Delete: ``DELETE /blockvolumes/{id}`` (Heketi's own not-found is success), then the
CHAP Secret (only one labelled for this PV's claim), then the record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from heketi_client import BlockVolumeCreateRequest, BlockVolumeInfo, HeketiClient
from heketi_client.errors import (
    HeketiConnectionError,
    HeketiError,
    NotFound,
    OutcomeUnknown,
)
from provisioner.controller.contract import InvalidInput, Outcome, ProvisionError
from provisioner.gluster.answers import Answer, AnswerRefused, Asked, accept
from provisioner.gluster.block.answers import answer_problem
from provisioner.gluster.block.chap import delete_chap_secret, ensure_chap_secret
from provisioner.gluster.block.credentials import block_key, block_key_for_delete
from provisioner.gluster.block.lookup import find_block_volume
from provisioner.gluster.block.objects import (
    block_delete_info,
    block_volume_id,
    build_block_pv,
)
from provisioner.gluster.block.orphans import BlockOrphanSweeper
from provisioner.gluster.block.parameters import BlockClassParameters, parse_block_parameters
from provisioner.gluster.claims import ClaimError, requested_gib
from provisioner.gluster.failures import delete_failure, provision_failure, refused_credentials
from provisioner.gluster.intent import Intent, IntentStore, RecordConflict
from provisioner.gluster.objects import claim_volume_name
from provisioner.gluster.parameter_values import ParameterError
from provisioner.gluster.pool import HeketiPool, HeketiTarget
from provisioner.gluster.secret_cache import DEFAULT_SECRET_TTL, SecretKeys
from provisioner.gluster.volume_owners import VolumeOwners
from provisioner.k8s.errors import KubeAPIError
from provisioner.k8s.kubeapi import KubeAPI

__all__ = ["BLOCK_ACCESS_MODES", "DEFAULT_BLOCK_PROVISIONER", "BlockProvisioner"]

log = structlog.get_logger(__name__)

Obj = dict[str, Any]
ClassLookup = Callable[[str], "Obj | None"]

DEFAULT_BLOCK_PROVISIONER = "gluster.org/glusterblock"
BLOCK_ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany")
"""An iSCSI LUN is attached to one node at a time for writing."""


def validate_block_claim(claim: Obj) -> int:
    """The size in GiB; ``ClaimError`` for what a block volume cannot be."""
    spec = claim.get("spec") or {}
    modes = spec.get("accessModes") or []
    if not modes:
        raise ClaimError("spec.accessModes", "at least one access mode is required")
    for mode in modes:
        if mode not in BLOCK_ACCESS_MODES:
            raise ClaimError(
                "spec.accessModes",
                f"{str(mode)[:64]} is not supported by gluster-block (iSCSI) volumes: use "
                "ReadWriteOnce or ReadOnlyMany (for ReadWriteMany use a file class, e.g. "
                "pvtype: nfs)",
            )
    if spec.get("selector"):
        raise ClaimError("spec.selector", "dynamic provisioning does not support a selector")
    if spec.get("volumeMode") not in (None, "Filesystem", "Block"):
        raise ClaimError("spec.volumeMode", f"{str(spec['volumeMode'])[:64]} is not supported")
    for source in ("dataSource", "dataSourceRef"):
        if spec.get(source):
            raise ClaimError(f"spec.{source}", "cloning a block volume is not supported")
    return requested_gib(claim)


def _may_have_happened(err: HeketiError) -> bool:
    if isinstance(err, OutcomeUnknown):
        return True
    return isinstance(err, HeketiConnectionError) and err.request_sent


class BlockProvisioner:
    """Provision and delete block volumes; see the module docstring."""

    def __init__(
        self,
        *,
        kube: KubeAPI,
        provisioner_name: str,
        class_lookup: ClassLookup,
        pool: HeketiPool,
        intent_namespace: str = "default",
        orphan_grace_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        secret_ttl: float = DEFAULT_SECRET_TTL,
        volume_owners: VolumeOwners | None = None,
    ) -> None:
        """``volume_owners``: which PV names which Heketi volume (``app`` shares one
        with the file backend, kept current from the PV informer)."""
        self.kube = kube
        self.owners = volume_owners or VolumeOwners((block_volume_id,))
        self.provisioner_name = provisioner_name
        self.class_lookup = class_lookup
        self.pool = pool
        self.records = IntentStore(
            kube, namespace=intent_namespace, provisioner_name=provisioner_name,
            gid_required=False,
        )  # fmt: skip
        self.secrets = SecretKeys(
            kube, ttl=secret_ttl, clock=clock,
            reader=lambda namespace, name, named_by: block_key(
                kube, namespace, name, provisioner_name=provisioner_name, named_by=named_by
            ),
        )  # fmt: skip
        self._lock = threading.Lock()
        self._known: dict[str, BlockVolumeInfo] = {}  # claim uid -> its volume
        self._recorded: set[str] = set()  # claim uids whose record this process wrote
        self._uncertain: set[str] = set()  # a volume may exist that we do not know
        self._busy: set[str] = set()  # provisions in flight (the sweep stays off)
        # Heketi puts a block volume only into a block-hosting volume whose own create
        # has finished, so a burst of first creates would each make a hosting volume
        # (1100 GiB by default) and run out of space. Until one create has succeeded on
        # a server, this process sends its creates there one at a time.
        self._warm: set[str] = set()
        self._first: dict[str, threading.Lock] = {}
        self.sweeper = BlockOrphanSweeper(self, grace_seconds=orphan_grace_seconds, clock=clock)

    # -- Provisioner ---------------------------------------------------------------

    def provision(self, claim: Obj, storage_class: Obj) -> Obj:
        uid = str(claim["metadata"]["uid"])
        with self._lock:
            if uid in self._busy or not self.sweeper.begin_provision(uid):
                raise ProvisionError("the claim's earlier block volume is being cleaned up")
            self._busy.add(uid)
        try:
            return self._provision(claim, storage_class)
        finally:
            with self._lock:
                self._busy.discard(uid)
            self.sweeper.end_provision(uid)

    def parameters(self, storage_class: Obj) -> BlockClassParameters:
        name = storage_class["metadata"]["name"]
        try:
            params = parse_block_parameters(storage_class.get("parameters") or {})
        except ParameterError as err:
            raise InvalidInput(f"{err} (StorageClass {name})") from None
        for warning in params.warnings:
            log.warning("storage_class.warning", storage_class=name, warning=warning)
        return params

    def target(self, params: BlockClassParameters, class_name: str) -> HeketiTarget:
        key = ""
        if params.secret_namespace and params.secret_name:
            key = self.secrets.read(
                params.secret_namespace, params.secret_name, named_by=f"StorageClass {class_name}"
            )
        return HeketiTarget(params.rest_url, params.rest_user, key)

    def _provision(self, claim: Obj, storage_class: Obj) -> Obj:
        class_name = storage_class["metadata"]["name"]
        try:
            size = validate_block_claim(claim)
        except ClaimError as err:
            raise InvalidInput(str(err)) from None
        params = self.parameters(storage_class)
        target = self.target(params, class_name)
        try:
            volume = self._find_or_create(claim, class_name, params, target, size)
        except (ProvisionError, HeketiError) as err:
            # a cached key Heketi refused: read the Secret again at once and, if it
            # was rotated, try once more with the new key (as file classes do)
            if not refused_credentials(err) or not self.secrets.invalidate(
                params.secret_namespace, params.secret_name
            ):
                raise
            fresh = self.target(params, class_name)
            if fresh.key == target.key:
                raise
            log.info("secret.key_changed", storage_class=class_name, heketi=target.url)
            target = fresh
            volume = self._find_or_create(claim, class_name, params, target, size)
        problem = answer_problem(volume, chap=params.chap)
        if problem is not None:
            # Not written: the volume stays the claim's (found again by name) and goes
            # with the claim (the sweep) if Heketi never answers better.
            with self._lock:
                self._known.pop(str(claim["metadata"]["uid"]), None)
                self._uncertain.add(str(claim["metadata"]["uid"]))
            raise ProvisionError(f"{problem}; not writing a PV from it")
        if params.chap:
            ensure_chap_secret(self.kube, claim, volume)
        return build_block_pv(
            claim=claim, storage_class=storage_class, params=params,
            provisioner_name=self.provisioner_name, volume=volume, resturl=target.url,
            chap=params.chap,
        )  # fmt: skip

    def _find_or_create(
        self,
        claim: Obj,
        class_name: str,
        params: BlockClassParameters,
        target: HeketiTarget,
        size: int,
    ) -> BlockVolumeInfo:
        meta = claim["metadata"]
        uid = str(meta["uid"])
        name = claim_volume_name(params.volume_name_prefix, claim)

        def failure(err: HeketiError, doing: str = "creating the block volume") -> ProvisionError:
            return provision_failure(
                err, url=target.url, user=target.user, key=target.key, size_gib=size,
                durability="block", doing=doing,
            )  # fmt: skip

        with self._lock:
            known = self._known.get(uid)
            recorded = uid in self._recorded
        if known is not None:
            return known
        if not recorded:
            intent = Intent(
                provisioner=self.provisioner_name, claim_namespace=meta["namespace"],
                claim_name=meta["name"], claim_uid=uid, class_name=class_name,
                rest_url=target.url, volume_name=name, gid=0,
            )  # fmt: skip
            try:
                _, created = self.records.write(intent)
            except KubeAPIError as err:
                raise ProvisionError(
                    f"writing the intent record of the block volume failed: {err}; will retry"
                ) from None
            except RecordConflict as err:
                raise ProvisionError(str(err)) from None
            with self._lock:
                self._recorded.add(uid)
                if not created:
                    self._uncertain.add(uid)
        client = self.pool.client(target)
        with self._lock:
            uncertain = uid in self._uncertain
        if uncertain:
            try:
                found = find_block_volume(client, name)
            except HeketiError as err:
                raise failure(err, "looking for a block volume an earlier attempt made") from None
            if found is not None:
                self._accept(uid, found, Asked(uid, name, min_size=size, what="lookup"))
                return self._remember(uid, found, adopted=True)
        request = BlockVolumeCreateRequest(
            size=size, name=name, clusters=params.cluster_ids, hacount=params.hacount,
            auth=params.chap,
        )  # fmt: skip
        try:
            volume = self._create(client, target.url, request)
        except HeketiError as err:
            if _may_have_happened(err):
                with self._lock:
                    self._uncertain.add(uid)
            raise failure(err) from None
        self._accept(uid, volume, Asked(uid, name, min_size=size))
        return self._remember(uid, volume, adopted=False)

    def _accept(self, uid: str, volume: BlockVolumeInfo, asked: Asked) -> None:
        """``answers.accept``; refused: the claim's own volume is unknown again, so
        the next attempt looks it up by name first."""
        try:
            accept(Answer.of(volume), asked, self.owners)
        except AnswerRefused:
            with self._lock:
                self._uncertain.add(uid)
            raise

    def _create(
        self, client: HeketiClient, url: str, request: BlockVolumeCreateRequest
    ) -> BlockVolumeInfo:
        if url not in self._warm:
            with self._lock:
                first = self._first.setdefault(url, threading.Lock())
            with first:
                if url not in self._warm:
                    with self.pool.slot(url):
                        volume = client.create_block_volume(request)
                    self._warm.add(url)
                    return volume
        with self.pool.slot(url):
            return client.create_block_volume(request)

    def _remember(self, uid: str, volume: BlockVolumeInfo, *, adopted: bool) -> BlockVolumeInfo:
        with self._lock:
            self._known[uid] = volume
            self._uncertain.discard(uid)
        log.info(
            "heketi_block_volume.adopted" if adopted else "heketi_block_volume.created",
            heketi_volume=volume.name, volume_id=volume.id, claim_uid=uid,
        )  # fmt: skip
        return volume

    # -- delete --------------------------------------------------------------------

    def delete(self, pv: Obj) -> None:
        info = block_delete_info(pv)
        name = pv["metadata"]["name"]
        if info.volume_id is None:
            raise ProvisionError(
                f"PV {name} names no Heketi block volume id; delete the block volume by "
                "hand and remove the finalizer",
                outcome=Outcome.WAIT_FOR_CHANGE,
            )
        url, user = info.rest_url, info.rest_user or ""
        secret_ns, secret_name = info.secret_namespace, info.secret_name
        if url is None:
            url, user, secret_ns, secret_name = self._class_target(pv)
        key = block_key_for_delete(
            self.kube, self.pool, url=url, user=user, namespace=secret_ns, name=secret_name,
            provisioner_name=self.provisioner_name, named_by=f"PersistentVolume {name}",
        )  # fmt: skip
        target = HeketiTarget(url, user, key)
        self.delete_block_volume(target, info.volume_id)
        self.owners.release(info.volume_id)
        if info.chap_namespace and info.chap_name:
            self.delete_chap_secret(info.chap_namespace, info.chap_name, info.claim_uid or "")
        try:
            self.records.discard(info.claim_uid or "")
        except KubeAPIError as err:
            raise ProvisionError(
                f"block volume {info.volume_id} is gone, but deleting its intent record "
                f"failed: {err}"
            ) from None
        with self._lock:
            self._known.pop(info.claim_uid or "", None)
            self._recorded.discard(info.claim_uid or "")

    def _class_target(self, pv: Obj) -> tuple[str, str, str | None, str | None]:
        """A PV without our annotations nor the retired provisioner's Blockstring."""
        from provisioner.controller.predicates import class_name_of

        class_name = class_name_of(pv) or ""
        storage_class = self.class_lookup(class_name) if class_name else None
        if storage_class is None:
            raise ProvisionError(
                f"PV {pv['metadata']['name']} names no Heketi server and its StorageClass "
                f'"{class_name}" is gone; restore the class to delete the block volume',
                outcome=Outcome.WAIT_FOR_CHANGE,
            )
        params = self.parameters(storage_class)
        return params.rest_url, params.rest_user, params.secret_namespace, params.secret_name

    def delete_block_volume(self, target: HeketiTarget, volume_id: str) -> None:
        client = self.pool.client(target)
        try:
            with self.pool.slot(target.url):
                client.delete_block_volume(volume_id)
        except NotFound:
            pass  # Heketi's own "Id not found": gone already
        except HeketiError as err:
            raise delete_failure(
                err, url=target.url, user=target.user, key=target.key, volume_id=volume_id,
                doing=f"deleting block volume {volume_id}",
            ) from None  # fmt: skip

    def delete_chap_secret(self, namespace: str, name: str, claim_uid: str) -> None:
        delete_chap_secret(self.kube, namespace, name, claim_uid)

    # -- Reconciler ----------------------------------------------------------------

    def reconcile(
        self, pvs: Iterable[Obj], claims: Iterable[Obj], storage_classes: Iterable[Obj]
    ) -> int:
        return self.sweeper.sweep(list(pvs), list(claims))

    def next_reconcile_in(self) -> float | None:
        return self.sweeper.next_due()

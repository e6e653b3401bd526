"""Creating a claim's Heketi volume, or finding the one an earlier attempt made.

Steps 1 to 3 of provision (see ``provisioner.gluster.provisioner``): allocate a GID,
write the intent record, create the Heketi volume or find it.

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
the record goes (the sweep).

Every answer, created or found, goes through ``answers.accept`` before it is kept:
its name, id, GID (the recorded one) and size must be what was asked. A refused one
is not kept, indexed or deleted; the claim's volume may still exist under its name,
so the next attempt looks for it first.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import structlog

from heketi_client import VolumeCreateRequest, VolumeInfo
from heketi_client.errors import (
    HeketiConnectionError,
    HeketiError,
    NotFound,
    OutcomeUnknown,
    VolumeNameInUse,
)
from provisioner.controller.contract import ProvisionError
from provisioner.gluster.answers import Answer, AnswerRefused, Asked, accept
from provisioner.gluster.attempts import Attempt
from provisioner.gluster.failures import provision_failure, user_role_hint
from provisioner.gluster.gid import GidExhausted
from provisioner.gluster.intent import Intent, IntentStore, RecordConflict
from provisioner.gluster.ledger import Ledger
from provisioner.gluster.objects import heketi_volume_name
from provisioner.gluster.parameters import GlusterClassParameters
from provisioner.gluster.pool import HeketiPool, HeketiTarget
from provisioner.k8s.errors import KubeAPIError

__all__ = ["VolumeCreator"]

log = structlog.get_logger(__name__)


class VolumeCreator:
    def __init__(
        self, *, provisioner_name: str, pool: HeketiPool, records: IntentStore, ledger: Ledger
    ) -> None:
        self.provisioner_name = provisioner_name
        self.pool = pool
        self.records = records
        self.ledger = ledger

    def find_or_create(
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

        attempt = self.ledger.attempts.for_claim(uid, class_name, target.url)
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
        if attempt.uncertain:
            try:
                found = self.ledger.find(target.url, self.pool.client(target), name)
            except HeketiError as err:
                doing = "looking for a volume an earlier attempt may have made"
                raise failure(err, doing) from None
            if found is not None:
                return self._adopt(uid, attempt, found, name, size)
        assert attempt.gid is not None
        request = VolumeCreateRequest(
            size=size,
            name=name,
            clusters=params.cluster_ids,
            durability=durability,
            gid=attempt.gid,
            gluster_volume_options=params.volume_options,
            # As in-tree: snapshots always enabled, the factor the class's (default 1).
            snapshot_factor=params.snap_factor or 1.0,
        )
        client = self.pool.client(target)
        try:
            with self.pool.early_slot(target.url) as operation_ended:
                volume = client.create_volume(request, on_finished=operation_ended)
        except VolumeNameInUse as err:
            # An earlier attempt (ours, or a previous process's) holds the name.
            try:
                found = self.ledger.find(target.url, client, name)
            except HeketiError as look_err:
                attempt.uncertain = True
                raise failure(look_err, "looking for the volume holding the name") from None
            if found is not None:
                return self._adopt(uid, attempt, found, name, size)
            attempt.uncertain = True  # still being created: visible once it is done
            raise failure(err) from None
        except HeketiError as err:
            if may_have_happened(err, target.user):
                attempt.uncertain = True
            # Either way the gid stays reserved: the intent record names it.
            raise failure(err) from None
        self._accept(attempt, volume, Asked(uid, name, gid=attempt.gid, min_size=size))
        attempt.volume = volume
        attempt.uncertain = False
        self.ledger.indexes.for_server(target.url).add(volume)
        log.info(
            "heketi_volume.created",
            heketi_volume=volume.name,
            volume_id=volume.id,
            gid=volume.gid,
            claim_uid=uid,
        )
        return volume

    def _record_intent(
        self, attempt: Attempt, planned: Intent, params: GlusterClassParameters
    ) -> None:
        """Allocate the gid and write the record (steps 1 and 2).

        Afterwards ``attempt.gid`` is the gid the record holds, and
        ``attempt.uncertain`` says whether a volume may exist already.
        """
        gids = self.ledger.gids
        if attempt.gid is None:
            try:
                attempt.gid = gids.allocate(attempt.class_name, params.gid_min, params.gid_max)
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
                gids.observe(attempt.class_name, recorded.gid)
                gids.release(attempt.class_name, attempt.gid)
                attempt.gid = recorded.gid
        attempt.recorded = True

    def _adopt(
        self, uid: str, attempt: Attempt, found: VolumeInfo, name: str, size: int
    ) -> VolumeInfo:
        """Take over a volume an earlier attempt created, once it checks out: its GID
        must be the record's (a volume of this name with another GID was not made
        for this record, and two volumes of a class with one GID would let each
        one's pods write the other's files)."""
        asked = Asked(uid, name, gid=attempt.gid, min_size=size, what="lookup")
        self._accept(attempt, found, asked)
        attempt.volume = found
        attempt.uncertain = False
        log.info(
            "heketi_volume.adopted", heketi_volume=found.name, volume_id=found.id, claim_uid=uid
        )
        return found

    def _accept(self, attempt: Attempt, volume: VolumeInfo, asked: Asked) -> None:
        """``answers.accept``; a refused answer leaves the claim's own volume unknown,
        so the next attempt looks it up by name before creating."""
        try:
            accept(Answer.of(volume), asked, self.ledger.owners)
        except AnswerRefused:
            attempt.uncertain = True
            raise

    def undo(self, target: HeketiTarget, uid: str, class_name: str, volume: VolumeInfo) -> None:
        """Delete a volume made for a PV that cannot be built (a bug, not a condition)."""
        client = self.pool.client(target)
        try:
            with self.pool.slot(target.url):
                client.delete_volume(volume.id)
        except NotFound:
            pass
        except HeketiError as err:
            log.error("heketi_volume.undo_failed", volume_id=volume.id, error=str(err))
            return  # keep the gid and the record: the volume may still exist
        # The gid stays reserved: the intent record still names it.
        self.ledger.volume_gone(target.url, volume.id, class_name, None, uid)


def may_have_happened(err: HeketiError, user: str) -> bool:
    """Whether a failed create may still have left a volume behind."""
    if isinstance(err, OutcomeUnknown):
        return True
    if isinstance(err, HeketiConnectionError):
        return err.request_sent
    # The "user" role may POST /volumes but not poll the queue: the 401 comes after
    # Heketi accepted the create.
    return user_role_hint(err, user)

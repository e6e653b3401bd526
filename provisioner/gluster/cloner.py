"""Cloning a claim's source volume in Heketi, or finding the clone an earlier attempt made.

The same steps as a create (``creator``), with the same crash safety:

1. the intent record is written before the Heketi call, so the orphan sweep finds a
   clone whose claim went before its PV was written (the record names the volume by
   the name derived from the new claim's uid, exactly as for a created volume);
2. ``POST /volumes/{source}/clone`` with that name. Heketi never checks clone names,
   so a second clone call would make a second volume: whenever an earlier attempt
   may have cloned (the record existed already, or the answer was lost), the name
   index is consulted first;
3. Heketi's answer (the clone's, or the one a lookup found) is checked before it is
   used (``answers``): the requested name, not the source's id nor any other PV's
   or claim's, the source's GID and never 0. A clone answered with another volume
   is never grown, let alone written into a PV;
4. if the claim asks for more than the source's size, the clone is grown
   (``expander``). Heketi's expand takes an increment, so the grow starts from the
   volume's size as Heketi reports it *now*: the clone's own answer only when it
   came in this very call, otherwise a fresh GET. After a failed or uncertain grow
   (a lost answer, a timeout) the remembered answer is stale and would have the
   whole increment sent again on every retry. The grown answer is checked too,
   its size against the request.

The GID. Heketi copies the source volume's GID to the clone and has no call to
change a volume's GID afterwards, and the clone's bricks are snapshots of the
source's, so its files belong to that GID anyway: a clone with a GID of its own
would be a copy its pods cannot write. The clone therefore keeps its source's GID,
and the PV says so. That GID is the tenant's already (the source is a claim in the
same namespace, bound to a PV we made for it). The clone's record holds it from
before the clone is asked for (``GidAllocator.share`` counts one more holder), so a
source deleted while its clone is in flight leaves the GID held; it goes back to the
pool only after both are gone (the clone's record or PV, and the source's PV). After
a restart ``prepare`` counts the record again (records of claims without a PV are
holders), so the protection survives it; it is lifted when the clone's record goes
with its PV (success: the PV holds it instead) or with its claim (the sweep).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import structlog

from heketi_client import VolumeInfo
from heketi_client.errors import HeketiError, NotFound, VolumeNameInUse
from provisioner.controller.contract import InvalidInput, Outcome, ProvisionError
from provisioner.gluster.answers import Answer, AnswerRefused, Asked, accept
from provisioner.gluster.attempts import Attempt
from provisioner.gluster.creator import may_have_happened
from provisioner.gluster.expander import VolumeExpander
from provisioner.gluster.failures import provision_failure
from provisioner.gluster.intent import Intent, IntentStore, RecordConflict
from provisioner.gluster.ledger import Ledger
from provisioner.gluster.objects import delete_info, heketi_volume_name
from provisioner.gluster.parameters import GlusterClassParameters
from provisioner.gluster.pool import HeketiPool, HeketiTarget, normalise_url
from provisioner.k8s.errors import KubeAPIError

__all__ = ["VolumeCloner"]

log = structlog.get_logger(__name__)

Obj = dict[str, Any]


class VolumeCloner:
    def __init__(
        self,
        *,
        provisioner_name: str,
        pool: HeketiPool,
        records: IntentStore,
        ledger: Ledger,
        expander: VolumeExpander,
    ) -> None:
        self.provisioner_name = provisioner_name
        self.pool = pool
        self.records = records
        self.ledger = ledger
        self.expander = expander

    def find_or_clone(
        self,
        claim: Obj,
        class_name: str,
        params: GlusterClassParameters,
        target: HeketiTarget,
        source_pv: Obj,
        size: int,
    ) -> VolumeInfo:
        """The claim's clone of ``source_pv``'s volume, at least ``size`` GiB."""
        uid = claim["metadata"]["uid"]
        name = heketi_volume_name(params, claim)
        source_id, gid = self._source(source_pv, target)

        def failure(err: HeketiError, doing: str) -> ProvisionError:
            return provision_failure(
                err, url=target.url, user=target.user, key=target.key, size_gib=size,
                durability="clone", doing=doing,
            )  # fmt: skip

        attempt = self.ledger.attempts.for_claim(uid, class_name, target.url)
        asked = Asked(uid, name, gid=gid, source_id=source_id, what="clone")
        fresh = False  # Heketi's answer about the clone came in this very call
        if attempt.volume is None:
            if not attempt.recorded:
                self._record_intent(attempt, claim, class_name, target, name, gid)
            if attempt.uncertain:
                try:
                    found = self.ledger.find(target.url, self.pool.client(target), name)
                except HeketiError as err:
                    doing = "looking for a clone an earlier attempt may have made"
                    raise failure(err, doing) from None
                if found is not None:
                    self._take(attempt, found, replace(asked, what="lookup"))
            if attempt.volume is None:
                self._clone(attempt, target, source_id, name, asked, failure)
                fresh = True
        assert attempt.volume is not None
        if attempt.volume.size < size:
            # Only an answer from this call is known to be current: after a failed or
            # uncertain grow the remembered one is not, so the expander GETs first.
            known = attempt.volume if fresh else None
            grown = self.expander.grow(target, attempt.volume.id, size, known)
            self._take(attempt, grown, replace(asked, min_size=size, what="grow"))
        return attempt.volume

    def _source(self, source_pv: Obj, target: HeketiTarget) -> tuple[str, int]:
        """The source volume id and GID, from the source PV (admin-written) only."""
        info = delete_info(source_pv)
        pv = source_pv["metadata"]["name"]
        if info.volume_id is None:
            raise InvalidInput(f"the source claim's PV {pv} names no Heketi volume to clone")
        if info.rest_url is not None and normalise_url(info.rest_url) != normalise_url(target.url):
            raise InvalidInput(
                f"the source claim's volume is on Heketi at {info.rest_url}, but the "
                f"StorageClass names {target.url}; a clone is made on its source's server"
            )
        if not info.gid:
            raise InvalidInput(
                f"the source claim's PV {pv} has no GID annotation; a clone keeps its "
                "source's GID, so it cannot be told"
            )
        return info.volume_id, info.gid

    def _record_intent(
        self,
        attempt: Attempt,
        claim: Obj,
        class_name: str,
        target: HeketiTarget,
        name: str,
        gid: int,
    ) -> None:
        intent = Intent(
            provisioner=self.provisioner_name,
            claim_namespace=claim["metadata"]["namespace"],
            claim_name=claim["metadata"]["name"],
            claim_uid=claim["metadata"]["uid"],
            class_name=class_name,
            rest_url=target.url,
            volume_name=name,
            gid=gid,
        )
        gids = self.ledger.gids
        held_now = not attempt.shares_gid
        if held_now:
            # Before the record and the clone: a source deleted from here on leaves
            # its GID to the clone instead of to the next claim of the class.
            gids.share(class_name, gid)
            attempt.shares_gid = True
        where = f"ConfigMap {self.records.namespace}/{intent.name}"
        try:
            recorded, created = self.records.write(intent)
        except KubeAPIError as err:
            # The record may exist now (the answer was lost): keep the hold with it.
            raise ProvisionError(
                f"writing {where} (the record made before the Heketi clone) failed: {err}; "
                "will retry"
            ) from None
        except RecordConflict as err:
            raise ProvisionError(str(err)) from None
        if not created and held_now:
            # Written before this call: it holds the GID already (counted by
            # ``prepare``, or by the attempt that wrote it).
            gids.release(class_name, gid)
            attempt.shares_gid = False
        if not created and recorded.gid != gid:
            raise ProvisionError(
                f"{where} records GID {recorded.gid} for this claim, but its source volume "
                f"has GID {gid}; remove the record if nothing was provisioned for the claim",
                outcome=Outcome.WAIT_FOR_CHANGE,
            )
        attempt.gid = gid
        attempt.recorded = True
        attempt.uncertain = not created

    def _clone(
        self,
        attempt: Attempt,
        target: HeketiTarget,
        source_id: str,
        name: str,
        asked: Asked,
        failure: Callable[[HeketiError, str], ProvisionError],
    ) -> None:
        client = self.pool.client(target)
        try:
            with self.pool.slot(target.url):
                volume = client.clone_volume(source_id, name)
        except NotFound:
            raise ProvisionError(
                f"Heketi has no volume {source_id}, which the source claim's PV names; "
                "nothing to clone",
                outcome=Outcome.WAIT_FOR_CHANGE,
            ) from None
        except VolumeNameInUse as err:  # Heketi does not check clone names; just in case
            attempt.uncertain = True
            raise failure(err, f"cloning volume {source_id}") from None
        except HeketiError as err:
            if may_have_happened(err, target.user):
                attempt.uncertain = True
            raise failure(err, f"cloning volume {source_id}") from None
        self._take(attempt, volume, asked)
        self.ledger.indexes.for_server(target.url).add(volume)
        log.info(
            "heketi_volume.cloned", heketi_volume=volume.name, volume_id=volume.id,
            source_volume_id=source_id, gid=volume.gid,
        )  # fmt: skip

    def _take(self, attempt: Attempt, volume: VolumeInfo, asked: Asked) -> None:
        """Make ``volume`` the claim's once it checks out (``answers.accept``). A
        refused answer leaves the claim's own clone unknown: the next attempt looks
        it up by name first."""
        try:
            accept(Answer.of(volume), asked, self.ledger.owners)
        except AnswerRefused:
            attempt.volume = None
            attempt.uncertain = True
            raise
        attempt.volume = volume
        attempt.uncertain = False

"""Cloning a claim's source volume in Heketi, or finding the clone an earlier attempt made.

The same steps as a create (``creator``), with the same crash safety:

1. the intent record is written before the Heketi call, so the orphan sweep finds a
   clone whose claim went before its PV was written (the record names the volume by
   the name derived from the new claim's uid, exactly as for a created volume);
2. ``POST /volumes/{source}/clone`` with that name. Heketi never checks clone names,
   so a second clone call would make a second volume: whenever an earlier attempt
   may have cloned (the record existed already, or the answer was lost), the name
   index is consulted first;
3. if the claim asks for more than the source's size, the clone is grown
   (``expander``: from Heketi's size, so a retry never grows twice).

The GID. Heketi copies the source volume's GID to the clone and has no call to
change a volume's GID afterwards, and the clone's bricks are snapshots of the
source's, so its files belong to that GID anyway: a clone with a GID of its own
would be a copy its pods cannot write. The clone therefore keeps its source's GID,
and the PV says so. That GID is the tenant's already (the source is a claim in the
same namespace, bound to a PV we made for it), and ``GidAllocator.share`` counts it
once more, so it goes back to the pool only after both volumes are gone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from heketi_client import VolumeInfo
from heketi_client.errors import HeketiError, NotFound, VolumeNameInUse
from provisioner.controller.contract import InvalidInput, Outcome, ProvisionError
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
                    self._take(attempt, found, gid)
            if attempt.volume is None:
                self._clone(attempt, target, source_id, name, gid, failure)
        assert attempt.volume is not None
        if attempt.volume.size < size:
            attempt.volume = self.expander.grow(target, attempt.volume.id, size, attempt.volume)
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
        where = f"ConfigMap {self.records.namespace}/{intent.name}"
        try:
            recorded, created = self.records.write(intent)
        except KubeAPIError as err:
            raise ProvisionError(
                f"writing {where} (the record made before the Heketi clone) failed: {err}; "
                "will retry"
            ) from None
        except RecordConflict as err:
            raise ProvisionError(str(err)) from None
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
        gid: int,
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
        self.ledger.indexes.for_server(target.url).add(volume)
        log.info(
            "heketi_volume.cloned", heketi_volume=volume.name, volume_id=volume.id,
            source_volume_id=source_id, gid=volume.gid,
        )  # fmt: skip
        self._take(attempt, volume, gid)

    def _take(self, attempt: Attempt, volume: VolumeInfo, gid: int) -> None:
        """Make ``volume`` the claim's; its GID must be the source's (Heketi copies it)."""
        if volume.gid and volume.gid != gid:
            raise ProvisionError(
                f"Heketi volume {volume.name} ({volume.id}) cloned for this claim has GID "
                f"{volume.gid}, not its source's {gid}; not binding it",
                outcome=Outcome.WAIT_FOR_CHANGE,
            )
        attempt.volume = volume
        attempt.uncertain = False
        if not attempt.shares_gid:
            self.ledger.gids.share(attempt.class_name, gid)
            attempt.shares_gid = True

"""Growing a Heketi volume to a requested size, safely repeatable.

Heketi's expand takes an increment (``expand_size``), not a target size, so sending
the same request twice grows the volume twice. Every grow therefore starts from
Heketi's own answer about the volume's size now (``GET /volumes/{id}``) and asks
only for the difference, rounded up to whole GiB as the in-tree plugin did. A retry
after a lost answer, or after a kill between Heketi's expand and the PV update,
finds the volume grown already and sends nothing. The one exception, ``known``, is
for an answer that is current by construction: a clone made in the same call
(``cloner``); a remembered answer from an earlier call never is.

Only the PV (admin-written) says which volume and which server: its
``gluster.kubernetes.io/heketi-volume-id`` and our server annotations, or for
in-tree PVs the StorageClass, exactly as delete reads them (``VolumeDeleter``).
"""

from __future__ import annotations

from typing import Any

import structlog

from heketi_client import VolumeInfo
from heketi_client.errors import HeketiError
from provisioner.controller.contract import Outcome, ProvisionError
from provisioner.gluster.annotations import ANN_HEKETI_VOLUME_ID
from provisioner.gluster.deleter import VolumeDeleter
from provisioner.gluster.failures import expand_failure
from provisioner.gluster.objects import delete_info
from provisioner.gluster.pool import HeketiPool, HeketiTarget
from provisioner.k8s.quantity import gib_ceil

__all__ = ["VolumeExpander"]

log = structlog.get_logger(__name__)


class VolumeExpander:
    def __init__(self, *, pool: HeketiPool, deleter: VolumeDeleter) -> None:
        """``deleter`` knows how a PV names its server and credentials."""
        self.pool = pool
        self.deleter = deleter

    def expand(self, pv: dict[str, Any], requested_bytes: int) -> str:
        """Grow the PV's volume to at least ``requested_bytes``; its capacity now."""
        info = delete_info(pv)
        name = pv["metadata"]["name"]
        if info.volume_id is None:
            raise ProvisionError(
                f"PV {name} names no Heketi volume (no {ANN_HEKETI_VOLUME_ID} annotation and "
                "no vol_<id> path), so it cannot be grown",
                outcome=Outcome.WAIT_FOR_CHANGE,
            )
        target = self.deleter.target_for(pv, info)
        volume = self.grow(target, info.volume_id, gib_ceil(requested_bytes))
        return f"{volume.size}Gi"

    def grow(
        self, target: HeketiTarget, volume_id: str, size_gib: int, known: VolumeInfo | None = None
    ) -> VolumeInfo:
        """Make the volume at least ``size_gib``; ``known``: Heketi's answer about it
        from this very attempt (a clone just made), which saves the GET."""
        client = self.pool.client(target)
        volume = known
        if volume is None:
            try:
                volume = client.get_volume(volume_id)
            except HeketiError as err:
                raise expand_failure(
                    err, url=target.url, user=target.user, key=target.key,
                    volume_id=volume_id, size_gib=size_gib, by_gib=0,
                ) from None  # fmt: skip
        if volume.size >= size_gib:
            return volume  # grown already (an earlier attempt), or big enough
        by = size_gib - volume.size
        try:
            with self.pool.slot(target.url):
                grown = client.expand_volume(volume_id, by)
        except HeketiError as err:
            raise expand_failure(
                err, url=target.url, user=target.user, key=target.key,
                volume_id=volume_id, size_gib=size_gib, by_gib=by,
            ) from None  # fmt: skip
        log.info("heketi_volume.expanded", volume_id=volume_id, by_gib=by, size_gib=grown.size)
        if grown.id != volume_id:
            # The expand's 303 named another volume: nothing learnt about this one.
            raise ProvisionError(
                f"Heketi answered the expand of volume {volume_id} with volume {grown.id}; "
                "not trusting it (not asking again until the claim changes)",
                outcome=Outcome.WAIT_FOR_CHANGE,
            )
        if grown.size < size_gib:
            # Asking again would grow it again, by an amount computed from an answer
            # that cannot be trusted: stop here and let the operator look.
            raise ProvisionError(
                f"Heketi reported volume {volume_id} at {grown.size} GiB after growing it by "
                f"{by} GiB from {volume.size} GiB (wanted {size_gib} GiB); not asking again "
                "until the claim changes",
                outcome=Outcome.WAIT_FOR_CHANGE,
            )
        return grown

"""One delete (or repair) attempt for one PersistentVolume we provisioned.

Order matters for "no leak whatever point the process dies at": the backend goes
first, then our finalizer, then the PV object.  Dying after the backend is gone
leaves a PV whose next delete finds nothing (Heketi 404 counts as done); the
finalizer guarantees the PV cannot vanish before that.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import structlog

from provisioner.annotations import FINALIZER
from provisioner.events import VOLUME_FAILED_DELETE, WARNING
from provisioner.kubeapi import KubeAPIError, KubeConflict, KubeNotFound
from provisioner.predicates import (
    VolumeAction,
    companions,
    provisioned_by,
    should_delete,
)
from provisioner.protocol import ProvisionError

if TYPE_CHECKING:
    from provisioner.controller import Controller

log = structlog.get_logger(__name__)

Obj = dict[str, Any]
_FINALIZER_ATTEMPTS = 5


def sync_volume(ctl: Controller, name: str) -> None:
    pv = ctl.pvs.get(name)
    if pv is None or not provisioned_by(pv, ctl.settings.provisioner_name):
        return
    if ctl.memories_for_volumes.was_deleted(name, str(pv["metadata"].get("uid"))):
        return  # a stale cached copy of a PV this process has just deleted
    action = should_delete(pv, ctl.settings.provisioner_name, claim=ctl.claim_of(pv))
    if action is VolumeAction.DELETE:
        _delete(ctl, pv)
    elif action is VolumeAction.RELEASE_FINALIZER:
        remove_finalizer(ctl, pv)
    else:
        _maybe_repair(ctl, pv)


def _delete(ctl: Controller, pv: Obj) -> None:
    name = pv["metadata"]["name"]
    class_name = (pv.get("spec") or {}).get("storageClassName") or ""
    logger = log.bind(volume=name, **{"class": class_name})
    started = time.monotonic()
    try:
        try:
            ctl.provisioner.delete(pv)
        except ProvisionError:
            raise
        except Exception as unexpected:
            logger.exception("delete.unexpected_error")
            raise ProvisionError(f"internal error ({type(unexpected).__name__})") from unexpected
    except ProvisionError as exc:
        elapsed = time.monotonic() - started
        ctl.metrics.delete_failed_total.labels(**{"class": class_name}).inc()
        ctl.metrics.delete_duration.labels(**{"class": class_name}).observe(elapsed)
        if ctl.memories_for_volumes.first_time(name, exc.message):
            ctl.events.record(pv, WARNING, VOLUME_FAILED_DELETE, exc.message)
        delay = ctl.queue.add_rate_limited(("volume", name))
        ctl.metrics.retries_total.inc()
        logger.warning(
            "delete.failed", duration=round(elapsed, 3), error=exc.message, retry_in=delay
        )
        return
    remove_finalizer(ctl, pv)
    uid = str(pv["metadata"].get("uid"))
    # Before the delete call, so that the informer's delete event (which forgets the
    # mark) always comes after it; undone if the PV may still be there.
    ctl.memories_for_volumes.mark_deleted(name, uid)
    try:
        # NotFound: the finalizer was the last one; Conflict: a same-named successor.
        with contextlib.suppress(KubeNotFound, KubeConflict):
            ctl.kube.delete("persistentvolumes", name, uid=pv["metadata"].get("uid"))
    except BaseException:
        ctl.memories_for_volumes.forget(name)
        raise
    elapsed = time.monotonic() - started
    ctl.queue.forget(("volume", name))
    ctl.metrics.delete_total.labels(**{"class": class_name}).inc()
    ctl.metrics.delete_duration.labels(**{"class": class_name}).observe(elapsed)
    logger.info("delete.succeeded", duration=round(elapsed, 3))


def remove_finalizer(ctl: Controller, pv: Obj) -> None:
    """Drop our finalizer, guarded by resourceVersion; re-read and retry on conflict.

    A merge patch replaces the whole list, so without the precondition it could
    erase a finalizer someone else added since we read the object.
    """
    name = pv["metadata"]["name"]
    current = pv
    for _ in range(_FINALIZER_ATTEMPTS):
        meta = current.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        if FINALIZER not in finalizers:
            return
        remaining = [f for f in finalizers if f != FINALIZER]
        patch = {
            "metadata": {"finalizers": remaining, "resourceVersion": meta.get("resourceVersion")}
        }
        try:
            ctl.kube.patch("persistentvolumes", name, patch)
            return
        except KubeNotFound:
            return
        except KubeConflict:
            try:
                current = ctl.kube.get("persistentvolumes", name)
            except KubeNotFound:
                return
    raise KubeAPIError(409, "Conflict", f"could not remove the finalizer of {name}")


def _maybe_repair(ctl: Controller, pv: Obj) -> None:
    if not ctl.companions_synced() or not ctl.needs_repair(pv):
        return
    name = pv["metadata"]["name"]
    try:
        repaired = ctl.provisioner.repair(pv)
    except Exception as exc:
        delay = ctl.queue.add_rate_limited(("volume", name))
        log.warning(
            "repair.failed",
            volume=name,
            error=getattr(exc, "message", type(exc).__name__),
            retry_in=delay,
        )
        return
    ctl.queue.forget(("volume", name))
    if repaired:
        ctl.metrics.repairs_total.inc()
        namespace, endpoints = companions(pv) or ("", "")
        log.info("repair.succeeded", volume=name, endpoints=f"{namespace}/{endpoints}")

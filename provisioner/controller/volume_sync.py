"""One delete (or repair) attempt for one PersistentVolume we provisioned.

Order matters for "no leak whatever point the process dies at": the backend goes
first, then our finalizer, then the PV object.  Dying after the backend is gone
leaves a PV whose next delete finds nothing (the backend's "not found" counts as
done); the finalizer guarantees the PV cannot vanish before that.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from provisioner.controller.caches import WatchedObjects
from provisioner.controller.contract import Provisioner, ProvisionError, Repairer
from provisioner.controller.keys import FINALIZER, PV_CONTROLLER_FINALIZER
from provisioner.controller.predicates import (
    Names,
    VolumeAction,
    class_name_of,
    provisioned_by,
    should_delete,
    should_repair,
)
from provisioner.k8s.errors import KubeAPIError, KubeConflict, KubeNotFound
from provisioner.k8s.events import VOLUME_FAILED_DELETE, WARNING, EventRecorder
from provisioner.k8s.informer import Informer
from provisioner.k8s.kubeapi import KubeAPI
from provisioner.k8s.workqueue import WorkQueue
from provisioner.observability import Metrics

__all__ = ["VolumeMemories", "VolumeSync", "remove_finalizer"]

log = structlog.get_logger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]
_FINALIZER_ATTEMPTS = 5


class VolumeMemories:
    """Which delete failures were already reported, so a retry loop stays quiet; and
    which PVs (name, uid) this process finished deleting: removing our finalizer sends
    one more update of the PV before its deletion reaches the cache, and that stale
    copy must not run (and count, and log) the whole delete a second time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reported: dict[str, set[str]] = {}
        self._deleted: dict[str, str] = {}  # PV name -> uid; dropped when the PV goes

    def mark_deleted(self, name: str, uid: str) -> None:
        with self._lock:
            self._reported.pop(name, None)
            self._deleted[name] = uid

    def was_deleted(self, name: str, uid: str) -> bool:
        with self._lock:
            return self._deleted.get(name) == uid

    def first_time(self, name: str, message: str) -> bool:
        with self._lock:
            seen = self._reported.setdefault(name, set())
            if message in seen:
                return False
            seen.add(message)
            return True

    def forget(self, name: str) -> None:
        with self._lock:
            self._reported.pop(name, None)
            self._deleted.pop(name, None)


class VolumeSync:
    """Delete, release or repair the PVs we provisioned; everything it needs is passed in.

    ``repairer`` is the backend when it keeps objects beside its PVs, and ``watched``
    the caches of those objects.
    """

    def __init__(
        self,
        *,
        provisioner_name: Names,
        backend: Provisioner,
        repairer: Repairer | None,
        pvs: Informer,
        claims: Informer,
        watched: WatchedObjects,
        kube: KubeAPI,
        events: EventRecorder,
        queue: WorkQueue[Key],
        metrics: Metrics,
        takeover: Callable[[], bool] = lambda: False,
    ) -> None:
        """``takeover()``: as for ``ClaimSync``; PVs whose claim went are Failed."""
        self.provisioner_name = provisioner_name
        self.takeover = takeover
        self.backend = backend
        self.repairer = repairer
        self.pvs = pvs
        self.claims = claims
        self.watched = watched
        self.kube = kube
        self.events = events
        self.queue = queue
        self.metrics = metrics
        self.memories = VolumeMemories()

    # -- what needs a worker -------------------------------------------------

    def needs_work(self, pv: Obj) -> bool:
        """Whether ``sync`` would act on this PV now, as seen from the caches.

        The same predicates as the worker, without side effects.  When a cache it
        depends on has not synced, it answers True: the worker will look again.
        """
        if not provisioned_by(pv, self.provisioner_name):
            return False
        if not (self.claims.has_synced() and self.watched.synced()):
            return True
        if self._action(pv) is not VolumeAction.NONE:
            return True
        return self.needs_repair(pv)

    def _action(self, pv: Obj) -> VolumeAction:
        return should_delete(
            pv,
            self.provisioner_name,
            claim=self.claim_of(pv),
            failed_is_released=self.takeover(),
        )

    def _plugin_finalizers(self) -> tuple[str, ...]:
        """Taking over a removed in-tree plugin, the PV controller's finalizer for it
        is ours to lift once the volume is gone (nothing else ever will)."""
        return (PV_CONTROLLER_FINALIZER,) if self.takeover() else ()

    def _claim_gone(self, pv: Obj) -> bool:
        """Asked of the API server, not the cache: a Failed PV's data is deleted only
        when no claim with its claimRef's uid exists (a list by name: RBAC grants
        list on claims)."""
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if not ref.get("namespace") or not ref.get("name") or not ref.get("uid"):
            return False
        try:
            found = self.kube.list(
                "persistentvolumeclaims",
                ref["namespace"],
                field_selector=f"metadata.name={ref['name']}",
            )
        except KubeAPIError as exc:
            log.warning("delete.claim_check_failed", volume=pv["metadata"]["name"], error=str(exc))
            self.queue.add_rate_limited(("volume", pv["metadata"]["name"]))
            return False
        uids = {str((c.get("metadata") or {}).get("uid")) for c in found.get("items") or ()}
        return str(ref["uid"]) not in uids

    def claim_of(self, pv: Obj) -> Obj | None:
        """The cached claim the PV's claimRef names (None if it names none)."""
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        return self.claims.get(f"{ref.get('namespace')}/{ref.get('name')}") if ref else None

    def watched_key(self, pv: Obj) -> str | None:
        return None if self.repairer is None else self.repairer.watched_key(pv)

    def needs_repair(self, pv: Obj) -> bool:
        """``should_repair`` as the watched caches see it (once they synced)."""
        key = self.watched_key(pv)
        return key is not None and should_repair(
            pv,
            self.provisioner_name,
            watched_key=key,
            all_present=self.watched.all_present(key),
        )

    # -- the worker ------------------------------------------------------------

    def sync(self, name: str) -> None:
        pv = self.pvs.get(name)
        if pv is None or not provisioned_by(pv, self.provisioner_name):
            return
        if self.memories.was_deleted(name, str(pv["metadata"].get("uid"))):
            return  # a stale cached copy of a PV this process has just deleted
        action = self._action(pv)
        if action is VolumeAction.DELETE:
            if (pv.get("status") or {}).get("phase") == "Failed" and not self._claim_gone(pv):
                return
            self._delete(pv)
        elif action is VolumeAction.RELEASE_FINALIZER:
            remove_finalizer(self.kube, pv)
        else:
            self._maybe_repair(pv)

    def _delete(self, pv: Obj) -> None:
        name = pv["metadata"]["name"]
        class_name = class_name_of(pv) or ""
        labels = {"class": class_name}
        logger = log.bind(volume=name, **labels)
        started = time.monotonic()
        try:
            try:
                self.backend.delete(pv)
            except ProvisionError:
                raise
            except Exception as unexpected:
                logger.exception("delete.unexpected_error")
                raise ProvisionError(
                    f"internal error ({type(unexpected).__name__})"
                ) from unexpected
        except ProvisionError as exc:
            # Whatever the outcome says: the PV stays (with our finalizer) until the
            # backend is gone, so delete is always tried again.
            elapsed = time.monotonic() - started
            self.metrics.delete_failed_total.labels(**labels).inc()
            self.metrics.delete_duration.labels(**labels).observe(elapsed)
            if self.memories.first_time(name, exc.message):
                self.events.record(pv, WARNING, VOLUME_FAILED_DELETE, exc.message)
            delay = self.queue.add_rate_limited(("volume", name))
            self.metrics.retries_total.inc()
            logger.warning(
                "delete.failed", duration=round(elapsed, 3), error=exc.message, retry_in=delay
            )
            return
        remove_finalizer(self.kube, pv)
        uid = str(pv["metadata"].get("uid"))
        # Before the delete call, so that the informer's delete event (which forgets the
        # mark) always comes after it; undone if the PV may still be there.
        self.memories.mark_deleted(name, uid)
        try:
            # NotFound: the finalizer was the last one; Conflict: a same-named successor.
            with contextlib.suppress(KubeNotFound, KubeConflict):
                self.kube.delete("persistentvolumes", name, uid=pv["metadata"].get("uid"))
                plugin = self._plugin_finalizers()
                if plugin:
                    # After the delete: before it, the PV controller puts its finalizer
                    # straight back on a Delete PV of an in-tree plugin.
                    current = self.kube.get("persistentvolumes", name)
                    if current["metadata"].get("uid") == uid:
                        remove_finalizer(self.kube, current, also=plugin)
        except BaseException:
            self.memories.forget(name)
            raise
        elapsed = time.monotonic() - started
        self.queue.forget(("volume", name))
        self.metrics.delete_total.labels(**labels).inc()
        self.metrics.delete_duration.labels(**labels).observe(elapsed)
        logger.info("delete.succeeded", duration=round(elapsed, 3))

    def _maybe_repair(self, pv: Obj) -> None:
        if self.repairer is None or not self.watched.synced() or not self.needs_repair(pv):
            return
        name = pv["metadata"]["name"]
        try:
            repaired = self.repairer.repair(pv)
        except Exception as exc:
            delay = self.queue.add_rate_limited(("volume", name))
            log.warning(
                "repair.failed",
                volume=name,
                error=getattr(exc, "message", type(exc).__name__),
                retry_in=delay,
            )
            return
        self.queue.forget(("volume", name))
        if repaired:
            self.metrics.repairs_total.inc()
            log.info("repair.succeeded", volume=name, watched=self.watched_key(pv))


def remove_finalizer(kube: KubeAPI, pv: Obj, *, also: tuple[str, ...] = ()) -> None:
    """Drop our finalizer (and ``also``), guarded by resourceVersion; re-read and retry
    on conflict.

    A merge patch replaces the whole list, so without the precondition it could
    erase a finalizer someone else added since we read the object.
    """
    name = pv["metadata"]["name"]
    current = pv
    for _ in range(_FINALIZER_ATTEMPTS):
        meta = current.get("metadata") or {}
        finalizers = list(meta.get("finalizers") or [])
        dropped = {FINALIZER, *also}
        if not dropped & set(finalizers):
            return
        remaining = [f for f in finalizers if f not in dropped]
        patch = {
            "metadata": {"finalizers": remaining, "resourceVersion": meta.get("resourceVersion")}
        }
        try:
            kube.patch("persistentvolumes", name, patch)
            return
        except KubeNotFound:
            return
        except KubeConflict:
            try:
                current = kube.get("persistentvolumes", name)
            except KubeNotFound:
                return
    raise KubeAPIError(409, "Conflict", f"could not remove the finalizer of {name}")

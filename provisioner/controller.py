"""The control loop: caches, a work queue, workers; the decisions live elsewhere.

Keys on the queue are ``("claim", "ns/name")`` and ``("volume", "pv-name")``.
Watch handlers only enqueue keys; workers re-read the object from the cache,
so they always act on the newest state and never on a stale event payload.
``predicates`` says what to act on, ``provisioning``/``deletion`` say how.

A volume key is enqueued only when the predicates say the worker would act on it
(delete, release the finalizer, repair).  Every later change that could alter that
answer arrives as an event that asks again (the PV changes, its claim is deleted,
an Endpoints/Service is deleted), so nothing is missed; and a start next to 10,000
bound volumes does not queue 10,000 no-op keys in front of the next new claim.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog

from provisioner.annotations import LABEL_PROVISIONED_FOR_PVC
from provisioner.bind_latency import BindTimer
from provisioner.config import Settings
from provisioner.deletion import sync_volume
from provisioner.events import EventRecorder
from provisioner.informer import (
    Informer,
    Transform,
    metadata_only,
    object_key,
    strip_managed_fields,
)
from provisioner.kubeapi import KubeAPI
from provisioner.observability import Metrics
from provisioner.predicates import (
    VolumeAction,
    claim_class_name,
    companions,
    provisioned_by,
    should_delete,
    should_repair,
)
from provisioner.protocol import Provisioner, Reconciler
from provisioner.provisioning import ClaimMemories, sync_claim
from provisioner.versions import glusterfs_mountable, parse_kube_version
from provisioner.work_context import log_context
from provisioner.workqueue import WorkQueue, start_workers

log = structlog.get_logger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]


class Caches:
    """The informers, built before the provisioner so it can look classes up."""

    def __init__(self, kube: KubeAPI, settings: Settings) -> None:
        def informer(
            resource: str, selector: str | None = None, transform: Transform | None = None
        ) -> Informer:
            return Informer(
                kube,
                resource,
                label_selector=selector,
                watch_timeout=settings.watch_timeout,
                retry_cap=min(30.0, settings.backoff_cap),
                transform=transform or strip_managed_fields,
            )

        self.claims = informer("persistentvolumeclaims")
        self.pvs = informer("persistentvolumes")
        self.classes = informer("storageclasses")
        # Only their presence is ever asked: keep the identity, not the body.
        self.endpoints = informer("endpoints", LABEL_PROVISIONED_FOR_PVC, metadata_only)
        self.services = informer("services", LABEL_PROVISIONED_FOR_PVC, metadata_only)

    def all(self) -> list[Informer]:
        return [self.claims, self.pvs, self.classes, self.endpoints, self.services]

    def start_order(self) -> list[list[Informer]]:
        """Groups to start and sync one after the other: whatever the PV handler
        looks at (claims, Endpoints, Services) is complete before the first PV
        arrives, so it can tell at once whether a volume needs a worker."""
        return [[self.claims, self.classes, self.endpoints, self.services], [self.pvs]]

    def storage_class(self, name: str) -> Obj | None:
        return self.classes.get(name)


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


class Controller:
    def __init__(
        self,
        kube: KubeAPI,
        provisioner: Provisioner,
        settings: Settings,
        *,
        caches: Caches | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.kube = kube
        self.provisioner = provisioner
        self.settings = settings
        self.caches = caches or Caches(kube, settings)
        self.claims = self.caches.claims
        self.pvs = self.caches.pvs
        self.classes = self.caches.classes
        self.endpoints = self.caches.endpoints
        self.services = self.caches.services
        self.metrics = metrics or Metrics()
        self.events = EventRecorder(kube, settings.provisioner_name)
        self.queue: WorkQueue[Key] = WorkQueue(
            base_delay=settings.backoff_base, max_delay=settings.backoff_cap
        )
        self.memories = ClaimMemories()
        self.memories_for_volumes = VolumeMemories()
        self.bind_timer = BindTimer(self.metrics.claim_bound)
        self.gate_message: str | None = None
        self.server_version = ""
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._sweep_wake = threading.Event()  # a pending claim went: sweep soon
        self._threads: list[threading.Thread] = []
        self._busy_lock = threading.Lock()
        self._busy_since: dict[str, tuple[Key, float]] = {}  # worker thread -> item, start
        self._wire()

    # -- event handlers: enqueue keys only ---------------------------------

    def _wire(self) -> None:
        self.claims.add_handlers(
            on_add=self._claim_changed,
            on_update=lambda _old, new: self._claim_changed(new),
            on_delete=self._claim_deleted,
        )
        self.pvs.add_handlers(
            on_add=self._volume_changed,
            on_update=lambda _old, new: self._volume_changed(new),
            on_delete=lambda pv: self.memories_for_volumes.forget(pv["metadata"]["name"]),
        )
        self.classes.add_handlers(
            on_add=self._class_changed, on_update=lambda _old, new: self._class_changed(new)
        )
        for informer in (self.endpoints, self.services):
            informer.add_handlers(on_delete=self._companion_deleted)

    def _claim_changed(self, claim: Obj) -> None:
        if not (claim.get("spec") or {}).get("volumeName"):
            self.queue.add(("claim", object_key(claim)))
        else:
            self.bind_timer.observe(claim)

    def _claim_deleted(self, claim: Obj) -> None:
        uid = str(claim["metadata"].get("uid"))
        self.memories.forget(uid)
        self.bind_timer.forget(uid)
        # A PV deleted directly waits for its claim to go; now it can.
        volume = (claim.get("spec") or {}).get("volumeName")
        if volume:
            self.queue.add(("volume", volume))
        else:  # it may leave an intent record (and a volume) that no PV will ever name
            self._sweep_wake.set()

    def _volume_changed(self, pv: Obj) -> None:
        if self.volume_needs_work(pv):
            self.queue.add(("volume", pv["metadata"]["name"]))

    def volume_needs_work(self, pv: Obj) -> bool:
        """Whether ``sync_volume`` would act on this PV now, as seen from the caches.

        The same predicates as the worker, without side effects.  When a cache it
        depends on has not synced, it answers True: the worker will look again.
        """
        name = self.settings.provisioner_name
        if not provisioned_by(pv, name):
            return False
        if not (self.claims.has_synced() and self.companions_synced()):
            return True
        if should_delete(pv, name, claim=self.claim_of(pv)) is not VolumeAction.NONE:
            return True
        return self.needs_repair(pv)

    def claim_of(self, pv: Obj) -> Obj | None:
        """The cached claim the PV's claimRef names (None if it names none)."""
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        return self.claims.get(f"{ref.get('namespace')}/{ref.get('name')}") if ref else None

    def needs_repair(self, pv: Obj) -> bool:
        """``should_repair`` as the Endpoints/Service caches see it (once they synced)."""
        where = companions(pv)
        if where is None:
            return False
        key = f"{where[0]}/{where[1]}"
        return should_repair(
            pv,
            self.settings.provisioner_name,
            endpoints_present=self.endpoints.get(key) is not None,
            service_present=self.services.get(key) is not None,
        )

    def _class_changed(self, storage_class: Obj) -> None:
        name = storage_class["metadata"]["name"]
        for claim in self.claims.list():
            if claim_class_name(claim) == name:
                self._claim_changed(claim)

    def _companion_deleted(self, obj: Obj) -> None:
        where = (obj["metadata"].get("namespace"), obj["metadata"]["name"])
        for pv in self.pvs.list():
            if companions(pv) == where:
                self._volume_changed(pv)

    def companions_synced(self) -> bool:
        return self.endpoints.has_synced() and self.services.has_synced()

    # -- lifecycle ---------------------------------------------------------

    def _check_version(self) -> None:
        self.server_version = self.kube.server_version()
        version = parse_kube_version(self.server_version)
        if glusterfs_mountable(version) or self.settings.assume_glusterfs_plugin:
            return
        self.gate_message = (
            f"Not provisioning: this cluster runs Kubernetes {self.server_version}, and "
            f"kubelets of 1.26 and later cannot mount glusterfs volumes (the in-tree "
            f"plugin was removed), so the volume could never be used. If your nodes "
            f"can still mount glusterfs, restart the provisioner with "
            f"--assume-glusterfs-plugin."
        )
        log.warning("version_gate.closed", server_version=self.server_version)

    def start(self, *, sync_timeout: float = 60.0) -> None:
        """Read the server version, fill the caches, prepare, then start workers."""
        self._check_version()
        for group in self.caches.start_order():
            for informer in group:
                informer.start()
            for informer in group:
                if not informer.wait_for_sync(sync_timeout):
                    raise TimeoutError(f"cache of {informer.resource} did not sync")
        self.provisioner.prepare(self.pvs.list(), self.claims.list())
        self._threads = start_workers(
            self.queue, self._process, count=self.settings.workers, name="worker"
        )
        resync = threading.Thread(target=self._resync_loop, name="resync", daemon=True)
        resync.start()
        self._threads.append(resync)
        self._start_orphan_sweeps()
        self._ready.set()
        log.info(
            "controller.started",
            provisioner=self.settings.provisioner_name,
            server_version=self.server_version,
            workers=self.settings.workers,
            gated=self.gate_message is not None,
        )

    def ready(self) -> bool:
        return self._ready.is_set() and not self._stopped.is_set()

    def problems(self) -> list[str]:
        """Why the loops look wedged (empty when healthy), for ``/healthz``.

        Before ``start`` (a standby) there is nothing to check. After it, every
        informer's watch thread and every worker thread must be alive, and no worker
        may have spent more than ``settings.stuck_worker_seconds`` on one item: each
        Heketi call and operation has its own timeout, so a longer item is stuck.
        """
        if not self._ready.is_set() or self._stopped.is_set():
            return []
        found = [
            f"informer {informer.resource}: watch thread ended"
            for informer in self.caches.all()
            if not informer.alive()
        ]
        found += [f"{t.name}: thread ended" for t in self._threads if not t.is_alive()]
        limit = self.settings.stuck_worker_seconds
        now = time.monotonic()
        with self._busy_lock:
            busy = list(self._busy_since.items())
        found += [
            f"{thread}: on {kind} {name} for {now - since:.0f}s (limit {limit:g}s)"
            for thread, ((kind, name), since) in busy
            if now - since > limit
        ]
        return found

    def stop(self, grace: float | None = None) -> bool:
        """Stop taking work; let in-flight items finish within ``grace``. True if they did."""
        self._stopped.set()
        self._sweep_wake.set()
        self.queue.shutdown()
        finished = self.queue.wait_idle(self.settings.shutdown_grace if grace is None else grace)
        for informer in self.caches.all():
            informer.stop(timeout=1.0)
        log.info("controller.stopped", in_flight_finished=finished)
        return finished

    def _start_orphan_sweeps(self) -> None:
        """First sweep with the caches as they are now (so that what it sees does not
        depend on thread timing), in the background so readiness does not wait."""
        if self.settings.orphan_sweep_period <= 0 or not isinstance(self.provisioner, Reconciler):
            return
        first = (self.pvs.list(), self.claims.list(), self.classes.list())
        sweeper = threading.Thread(
            target=self._orphan_sweep_loop, args=(first,), name="orphan-sweep", daemon=True
        )
        sweeper.start()
        self._threads.append(sweeper)

    def _orphan_sweep_loop(self, first: tuple[list[Obj], list[Obj], list[Obj]]) -> None:
        """Sweep every period; sooner when a pending claim was deleted, and again when
        a record the last sweep saw orphaned has waited out the provisioner's grace."""
        self.sweep_orphans(*first)
        while not self._stopped.is_set():
            self._sweep_wake.wait(self._next_sweep_in())
            self._sweep_wake.clear()
            if self._stopped.is_set():
                return
            self.sweep_orphans(self.pvs.list(), self.claims.list(), self.classes.list())

    def _next_sweep_in(self) -> float:
        period = self.settings.orphan_sweep_period
        due = getattr(self.provisioner, "next_reconcile_in", None)
        waiting = due() if callable(due) else None
        # The small margin keeps the wake-up from landing a hair before the due time.
        return period if waiting is None else min(period, waiting + 0.05)

    def sweep_orphans(self, pvs: list[Obj], claims: list[Obj], classes: list[Obj]) -> int:
        """One ``reconcile`` of the provisioner; returns how many volumes it reclaimed."""
        assert isinstance(self.provisioner, Reconciler)
        try:
            reclaimed = self.provisioner.reconcile(pvs, claims, classes)
        except Exception as exc:  # the next period is the retry
            log.warning("orphan_sweep.failed", error=str(exc)[:200])
            return 0
        finally:
            self.metrics.orphan_sweeps_total.inc()
        if reclaimed:
            self.metrics.orphans_reclaimed_total.inc(reclaimed)
        return reclaimed

    def _resync_loop(self) -> None:
        while not self._stopped.wait(self.settings.resync_period):
            self.resync()

    def resync(self) -> None:
        """Re-examine everything: retries quiet failures and catches missed events."""
        self.memories.allow_retry_of_invalid()
        for claim in self.claims.list():
            self._claim_changed(claim)
        for pv in self.pvs.list():
            self._volume_changed(pv)

    # -- the worker --------------------------------------------------------

    def _process(self, key: Key) -> None:
        kind, name = key
        thread = threading.current_thread().name
        with self._busy_lock:
            self._busy_since[thread] = (key, time.monotonic())
        try:
            # Every line logged while this item is handled (here, in the provisioner,
            # in heketi_client) carries namespace, claim, class and volume.
            with log_context(self, key):
                self._sync(kind, name)
        finally:
            with self._busy_lock:
                self._busy_since.pop(thread, None)
            self.metrics.queue_depth.set(len(self.queue))

    def _sync(self, kind: str, name: str) -> None:
        try:
            if kind == "claim":
                sync_claim(self, name)
            else:
                sync_volume(self, name)
        except Exception as exc:  # API trouble mid-operation: every step is safe to repeat
            delay = self.queue.add_rate_limited((kind, name))
            self.metrics.retries_total.inc()
            log.warning("sync.failed", kind=kind, item=name, error=str(exc)[:200], retry_in=delay)

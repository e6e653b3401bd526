"""The control loop: caches, a work queue, workers; the decisions live elsewhere.

Keys on the queue are ``("claim", "ns/name")`` (provision), ``("resize", "ns/name")``
(grow a bound claim: ``resize_sync``) and ``("volume", "pv-name")``.
Watch handlers only enqueue keys; workers re-read the object from the cache,
so they always act on the newest state and never on a stale event payload.
``predicates`` says what to act on, ``claim_sync``/``volume_sync`` say how, and the
backend is reached only through ``contract``.

A volume key is enqueued only when the predicates say the worker would act on it
(delete, release the finalizer, repair).  Every later change that could alter that
answer arrives as an event that asks again (the PV changes, its claim is deleted,
a watched object is deleted), so nothing is missed; and a start next to 10,000
bound volumes does not queue 10,000 no-op keys in front of the next new claim.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from provisioner.config import Settings
from provisioner.controller.backends import Backends, served_names
from provisioner.controller.bind_latency import BindTimer
from provisioner.controller.caches import Caches
from provisioner.controller.claim_sync import ClaimSync
from provisioner.controller.contract import (
    Expander,
    Gate,
    Preparer,
    Provisioner,
    Reconciler,
    Repairer,
    Takeover,
)
from provisioner.controller.log_context import log_context
from provisioner.controller.predicates import class_name_of
from provisioner.controller.resize_sync import KIND as RESIZE
from provisioner.controller.resize_sync import ResizeSync
from provisioner.controller.volume_sync import VolumeSync
from provisioner.k8s.events import EventRecorder
from provisioner.k8s.informer import object_key
from provisioner.k8s.kubeapi import KubeAPI
from provisioner.k8s.versions import ServerVersion
from provisioner.k8s.workqueue import WorkQueue, start_workers
from provisioner.observability import Metrics

__all__ = ["Controller"]

log = structlog.get_logger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]


class Controller:
    def __init__(
        self,
        kube: KubeAPI,
        provisioner: Provisioner,
        settings: Settings,
        *,
        caches: Caches | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` times the queue's backoff (a fake one in tests)."""
        self.kube = kube
        self.provisioner = provisioner
        self.settings = settings
        self.caches = caches or Caches(kube, settings)
        self.claims = self.caches.claims
        self.pvs = self.caches.pvs
        self.classes = self.caches.classes
        self.repairer = provisioner if isinstance(provisioner, Repairer) else None
        self.reconciler = provisioner if isinstance(provisioner, Reconciler) else None
        self.gate = provisioner if isinstance(provisioner, Gate) else None
        watched = self.caches.watch(self.repairer.watched_kinds() if self.repairer else ())
        self.metrics = metrics or Metrics()
        self.events = EventRecorder(kube, settings.provisioner_name)
        self.queue: WorkQueue[Key] = WorkQueue(
            base_delay=settings.backoff_base, max_delay=settings.backoff_cap, clock=clock
        )
        self.bind_timer = BindTimer(self.metrics.claim_bound)
        self.server: ServerVersion | None = None
        # Every name the backend serves (several when it is a ``Backends``).
        self.names = served_names(provisioner, settings.provisioner_name)
        self.claim_sync = ClaimSync(
            provisioner_name=self.names,
            backend=provisioner,
            claims=self.claims,
            classes=self.classes,
            pvs=self.pvs,
            kube=kube,
            events=self.events,
            queue=self.queue,
            metrics=self.metrics,
            bind_timer=self.bind_timer,
            gate=self._gate_message,
            takeover=self._takeover,
            pv_finalizer=settings.pv_finalizer,
        )
        self.volume_sync = VolumeSync(
            provisioner_name=self.names,
            backend=provisioner,
            repairer=self.repairer,
            pvs=self.pvs,
            claims=self.claims,
            watched=watched,
            kube=kube,
            events=self.events,
            queue=self.queue,
            metrics=self.metrics,
            takeover=self._takeover,
        )
        self.expander = provisioner if isinstance(provisioner, Expander) else None
        self.resize_sync = (
            None
            if self.expander is None
            else ResizeSync(
                provisioner_name=settings.provisioner_name,
                backend=self.expander,
                claims=self.claims,
                classes=self.classes,
                pvs=self.pvs,
                kube=kube,
                events=self.events,
                queue=self.queue,
                metrics=self.metrics,
                server_resizes=self._server_resizes,
            )
        )
        self._ready = threading.Event()
        self._warm_lock = threading.Lock()
        self._warmed = False
        self._warming: list[Any] = []  # informers started by ``warm``
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
            on_delete=lambda pv: self.volume_sync.memories.forget(pv["metadata"]["name"]),
        )
        self.classes.add_handlers(
            on_add=self._class_changed, on_update=lambda _old, new: self._class_changed(new)
        )
        for informer in self.caches.watched.informers:
            informer.add_handlers(on_delete=self._watched_deleted)

    def _claim_changed(self, claim: Obj) -> None:
        if not (claim.get("spec") or {}).get("volumeName"):
            self.queue.add(("claim", object_key(claim)))
            return
        self.bind_timer.observe(claim)
        if self.resize_sync is not None and self.resize_sync.wants(claim):
            self.queue.add((RESIZE, object_key(claim)))

    def _claim_deleted(self, claim: Obj) -> None:
        uid = str(claim["metadata"].get("uid"))
        self.claim_sync.memories.forget(uid)
        self.bind_timer.forget(uid)
        if self.resize_sync is not None:
            self.resize_sync.forget(uid)
        # A PV deleted directly waits for its claim to go; now it can.
        volume = (claim.get("spec") or {}).get("volumeName")
        if volume:
            self.queue.add(("volume", volume))
        else:  # it may leave backend state (and a volume) that no PV will ever name
            self._sweep_wake.set()

    def _volume_changed(self, pv: Obj) -> None:
        if self.volume_sync.needs_work(pv):
            self.queue.add(("volume", pv["metadata"]["name"]))
        # PVs sync after claims (``Caches.start_order``): a claim waiting to grow is
        # recognised once its PV is cached, and again whenever the PV changes.
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if self.resize_sync is not None and ref.get("namespace") and ref.get("name"):
            key = f"{ref['namespace']}/{ref['name']}"
            claim = self.claims.get(key)
            if claim is not None and self.resize_sync.wants(claim):
                self.queue.add((RESIZE, key))

    def _class_changed(self, storage_class: Obj) -> None:
        name = storage_class["metadata"]["name"]
        for claim in self.claims.list():
            if class_name_of(claim) == name:
                self._claim_changed(claim)

    def _watched_deleted(self, obj: Obj) -> None:
        key = object_key(obj)
        for pv in self.pvs.list():
            if self.volume_sync.watched_key(pv) == key:
                self._volume_changed(pv)

    def _takeover(self, name: str | None = None) -> bool:
        """Whether we serve a removed in-tree plugin's name: ``name`` (a class's
        provisioner) when given, any served name otherwise."""
        if self.server is None:
            return False
        backend = self.provisioner
        if name is not None and isinstance(backend, Backends):
            backend = backend.by_name.get(name)  # type: ignore[assignment]
        return isinstance(backend, Takeover) and backend.plugin_removed(self.server)

    def _server_resizes(self) -> bool:
        return (
            self.server is not None
            and self.expander is not None
            and self.expander.resized_by_server(self.server)
        )

    def _gate_message(self, storage_class: Obj) -> str | None:
        if self.gate is None or self.server is None:
            return None
        return self.gate.gate(storage_class, self.server)

    # -- lifecycle ---------------------------------------------------------

    def warm(self, *, sync_timeout: float = 60.0) -> None:
        """Read the server version and fill the caches; safe to call from several
        threads and again (the first call does the work, the others wait for it).

        A standby calls it at once, before it leads: its informers then follow the
        API server all along, so a takeover costs no list of 50,000 PVs. Only
        ``start`` (workers, writes) waits for leadership. Handlers may queue keys
        meanwhile; no worker takes them before ``start``.
        """
        with self._warm_lock:
            if self._warmed:
                return
            self.server = ServerVersion.parse(self.kube.server_version())
            for group in self.caches.start_order():
                for informer in group:
                    if informer not in self._warming:  # a retry after a timeout
                        self._warming.append(informer)
                        informer.start()
                for informer in group:
                    if not informer.wait_for_sync(sync_timeout):
                        raise TimeoutError(f"cache of {informer.resource} did not sync")
            self._warmed = True
            # What the caches hold now lives as long as the process: the cyclic
            # collector need not walk it again and again (idle CPU at 50,000 PVs).
            gc.freeze()
            log.info(
                "controller.caches_synced",
                claims=len(self.claims.list()),
                volumes=len(self.pvs.list()),
            )

    def sync_caches(self, *, sync_timeout: float = 60.0) -> None:
        """Fill the caches (``warm``, unless done already), then prepare the backend:
        everything ``start`` does before it starts threads (tests drive the queue from
        here). Preparing waits for leadership: it reads state (the intent records) that
        only the leader changes."""
        self.warm(sync_timeout=sync_timeout)
        if isinstance(self.provisioner, Preparer):
            self.provisioner.prepare(self.pvs.list(), self.claims.list())

    def start(self, *, sync_timeout: float = 60.0) -> None:
        """Fill the caches and prepare (``sync_caches``), then start the workers."""
        self.sync_caches(sync_timeout=sync_timeout)
        self._threads = start_workers(
            self.queue, self.process, count=self.settings.workers, name="worker"
        )
        resync = threading.Thread(target=self._resync_loop, name="resync", daemon=True)
        resync.start()
        self._threads.append(resync)
        self._start_orphan_sweeps()
        self._ready.set()
        log.info(
            "controller.started",
            provisioner=",".join(sorted(self.names)),
            server_version=self.server.git_version if self.server else "",
            workers=self.settings.workers,
        )

    def ready(self) -> bool:
        return self._ready.is_set() and not self._stopped.is_set()

    def problems(self) -> list[str]:
        """Why the loops look wedged (empty when healthy), for ``/healthz``.

        Once the caches are warm (a standby too) every informer's watch thread must
        be alive: a standby with dead caches would take over blind. After ``start``
        every worker thread must be alive too, and no worker may have spent more than
        ``settings.stuck_worker_seconds`` on one item: each backend call has its own
        timeouts, so a longer item is stuck.
        """
        if self._stopped.is_set() or not (self._warmed or self._ready.is_set()):
            return []
        found = [
            f"informer {informer.resource}: watch thread ended"
            for informer in self.caches.all()
            if not informer.alive()
        ]
        if not self._ready.is_set():
            return found
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

    # -- the orphan sweep (a Reconciler backend) ----------------------------

    def _start_orphan_sweeps(self) -> None:
        """First sweep with the caches as they are now (so that what it sees does not
        depend on thread timing), in the background so readiness does not wait."""
        if self.settings.orphan_sweep_period <= 0 or self.reconciler is None:
            return
        first = (self.pvs.list(), self.claims.list(), self.classes.list())
        sweeper = threading.Thread(
            target=self._orphan_sweep_loop, args=(first,), name="orphan-sweep", daemon=True
        )
        sweeper.start()
        self._threads.append(sweeper)

    def _orphan_sweep_loop(self, first: tuple[list[Obj], list[Obj], list[Obj]]) -> None:
        """Sweep every period; sooner when a pending claim was deleted, and again when
        something the last sweep saw has waited out the backend's grace."""
        self.sweep_orphans(*first)
        while not self._stopped.is_set():
            self._sweep_wake.wait(self._next_sweep_in())
            self._sweep_wake.clear()
            if self._stopped.is_set():
                return
            self.sweep_orphans(self.pvs.list(), self.claims.list(), self.classes.list())

    def _next_sweep_in(self) -> float:
        period = self.settings.orphan_sweep_period
        waiting = self.reconciler.next_reconcile_in() if self.reconciler else None
        # The small margin keeps the wake-up from landing a hair before the due time.
        return period if waiting is None else min(period, waiting + 0.05)

    def sweep_orphans(self, pvs: list[Obj], claims: list[Obj], classes: list[Obj]) -> int:
        """One ``reconcile`` of the backend; returns how many volumes it reclaimed."""
        if self.reconciler is None:
            return 0
        try:
            reclaimed = self.reconciler.reconcile(pvs, claims, classes)
        except Exception as exc:  # the next period is the retry
            log.warning("orphan_sweep.failed", error=str(exc)[:200])
            return 0
        finally:
            self.metrics.orphan_sweeps_total.inc()
        if reclaimed:
            self.metrics.orphans_reclaimed_total.inc(reclaimed)
        return reclaimed

    # -- resync ------------------------------------------------------------

    def _resync_loop(self) -> None:
        while not self._stopped.wait(self.settings.resync_period):
            self.resync()

    def resync(self) -> None:
        """Re-examine everything: retries quiet failures and catches missed events."""
        self.claim_sync.memories.allow_retry_of_waiting()
        if self.resize_sync is not None:
            self.resize_sync.allow_retry_of_waiting()
        for claim in self.claims.list():
            self._claim_changed(claim)
        for pv in self.pvs.list():
            self._volume_changed(pv)

    # -- the worker --------------------------------------------------------

    def process(self, key: Key) -> None:
        """Handle one queue key (a worker's body); never raises for a sync failure."""
        kind, name = key
        thread = threading.current_thread().name
        with self._busy_lock:
            self._busy_since[thread] = (key, time.monotonic())
        try:
            # Every line logged while this item is handled (here, in the backend and
            # in the clients it uses) carries namespace, claim, class and volume.
            with log_context(self.claims, self.pvs, key):
                self._sync(kind, name)
        finally:
            with self._busy_lock:
                self._busy_since.pop(thread, None)
            self.metrics.queue_depth.set(len(self.queue))

    def _sync(self, kind: str, name: str) -> None:
        try:
            if kind == "claim":
                self.claim_sync.sync(name)
            elif kind == RESIZE:
                if self.resize_sync is not None:
                    self.resize_sync.sync(name)
            else:
                self.volume_sync.sync(name)
        except Exception as exc:  # API trouble mid-operation: every step is safe to repeat
            delay = self.queue.add_rate_limited((kind, name))
            self.metrics.retries_total.inc()
            log.warning("sync.failed", kind=kind, item=name, error=str(exc)[:200], retry_in=delay)

"""One provisioning attempt for one claim, and what the controller remembers about it.

The memory (``ClaimMemory``) is what keeps events from spamming: a resync
re-examines every claim every few minutes, and a claim that cannot be served
must not collect a new Warning each time.  A message is reported once per claim
*fingerprint* (its spec plus its class's resourceVersion); changing either starts
afresh, which is also when a claim that waits for a change is tried again.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from provisioner.controller.bind_latency import BindTimer
from provisioner.controller.clone_source import clone_source, data_source
from provisioner.controller.contract import (
    Cloner,
    InvalidInput,
    Outcome,
    Provisioner,
    ProvisionError,
    pv_name,
)
from provisioner.controller.keys import FINALIZER
from provisioner.controller.predicates import ClaimVerdict, Names, class_name_of, should_provision
from provisioner.k8s.errors import KubeAlreadyExists, KubeAPIError
from provisioner.k8s.events import (
    NORMAL,
    PROVISIONING,
    PROVISIONING_CLEANUP_FAILED,
    PROVISIONING_FAILED,
    PROVISIONING_SUCCEEDED,
    WARNING,
    EventRecorder,
)
from provisioner.k8s.informer import Lookup
from provisioner.k8s.kubeapi import KubeAPI
from provisioner.k8s.workqueue import WorkQueue
from provisioner.observability import Metrics

__all__ = ["ClaimMemories", "ClaimMemory", "ClaimSync", "fingerprint"]

log = structlog.get_logger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]
Report = Callable[[str, str, str], None]


@dataclass
class ClaimMemory:
    fingerprint: str = ""
    waiting: bool = False  # the last attempt said WAIT_FOR_CHANGE
    reported: set[tuple[str, str]] = field(default_factory=set)


def fingerprint(claim: Obj, storage_class: Obj | None) -> str:
    spec = json.dumps(claim.get("spec") or {}, sort_keys=True)
    class_version = ((storage_class or {}).get("metadata") or {}).get("resourceVersion")
    return f"{class_version}|{spec}"


_SOURCE_LABELS = ("PersistentVolumeClaim", "VolumeSnapshot")


def source_label(source: tuple[str, Obj] | None) -> str:
    """The metrics' ``source`` label: the data source's kind, from a fixed set. The
    kind is tenant-written; a free-form label value would let a tenant grow the
    metrics without bound."""
    if source is None:
        return ""
    kind = source[1].get("kind")
    return kind if kind in _SOURCE_LABELS else "other"


def retryable(exc: KubeAPIError) -> bool:
    """Worth trying again: no answer, throttled, server trouble, or a conflict."""
    return exc.status in (0, 409, 429) or exc.status >= 500


class ClaimMemories:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_uid: dict[str, ClaimMemory] = {}
        self.gate_warned: set[str] = set()
        self.provisioned: set[str] = set()  # PV created, maybe not yet in the cache

    def for_claim(self, uid: str, print_: str) -> ClaimMemory:
        with self._lock:
            memory = self._by_uid.get(uid)
            if memory is None or memory.fingerprint != print_:
                memory = ClaimMemory(fingerprint=print_)
                self._by_uid[uid] = memory
            return memory

    def forget(self, uid: str) -> None:
        with self._lock:
            self._by_uid.pop(uid, None)
            self.gate_warned.discard(uid)
            self.provisioned.discard(uid)

    def allow_retry_of_waiting(self) -> None:
        """On resync: a claim waiting for a change may have been fixed outside it (a
        Secret)."""
        with self._lock:
            for memory in self._by_uid.values():
                memory.waiting = False


class ClaimSync:
    """Provision claims through the backend; everything it needs is passed in."""

    def __init__(
        self,
        *,
        provisioner_name: Names,
        backend: Provisioner,
        claims: Lookup,
        classes: Lookup,
        pvs: Lookup,
        kube: KubeAPI,
        events: EventRecorder,
        queue: WorkQueue[Key],
        metrics: Metrics,
        bind_timer: BindTimer,
        gate: Callable[[Obj], str | None],
        takeover: Callable[[str | None], bool] = lambda name: False,
        pv_finalizer: bool = True,
    ) -> None:
        """``gate(storage_class)``: why not to provision on this server (None: go on).
        ``takeover(name)``: we serve the class's provisioner ``name`` for an in-tree plugin
        the server no longer has (``contract.Takeover``), so its claims carry no
        storage-provisioner annotation.
        ``pv_finalizer``: whether PVs carry our finalizer (``--no-pv-finalizer``)."""
        self.provisioner_name = provisioner_name
        self.backend = backend
        self.cloner = backend if isinstance(backend, Cloner) else None
        self.claims = claims
        self.classes = classes
        self.pvs = pvs
        self.kube = kube
        self.events = events
        self.queue = queue
        self.metrics = metrics
        self.bind_timer = bind_timer
        self.gate = gate
        self.takeover = takeover
        self.pv_finalizer = pv_finalizer
        self.memories = ClaimMemories()

    def sync(self, key: str) -> None:
        """Provision the claim behind ``key`` if it is ours and has no volume yet."""
        claim = self.claims.get(key)
        if claim is None:
            return
        class_name = class_name_of(claim)
        storage_class = self.classes.get(class_name) if class_name else None
        served = (storage_class or {}).get("provisioner")
        verdict = should_provision(
            claim,
            storage_class,
            self.provisioner_name,
            annotation_required=not self.takeover(served if isinstance(served, str) else None),
        )
        if verdict is not ClaimVerdict.PROVISION:
            return  # not ours, or WaitForFirstConsumer before a node is chosen: silent
        assert storage_class is not None
        uid = str(claim["metadata"]["uid"])
        volume = pv_name(uid)
        if uid in self.memories.provisioned or self.pvs.get(volume) is not None:
            return
        closed = self.gate(storage_class)
        if closed is not None:
            if uid not in self.memories.gate_warned:
                self.memories.gate_warned.add(uid)
                self.events.record(claim, WARNING, PROVISIONING_FAILED, closed)
            return
        memory = self.memories.for_claim(uid, fingerprint(claim, storage_class))
        if memory.waiting:
            return
        self._attempt(key, claim, storage_class, memory)

    def _attempt(self, key: str, claim: Obj, storage_class: Obj, memory: ClaimMemory) -> None:
        meta = claim["metadata"]
        uid = str(meta["uid"])
        volume = pv_name(uid)
        class_name = class_name_of(claim)

        def report(event_type: str, reason: str, message: str) -> None:
            if (reason, message) not in memory.reported:
                memory.reported.add((reason, message))
                self.events.record(claim, event_type, reason, message)

        logger = log.bind(
            namespace=meta.get("namespace"),
            claim=meta.get("name"),
            **{"class": class_name, "volume": volume},
        )
        source = data_source(claim)
        labels = {"class": class_name or "", "source": source_label(source)}
        report(
            NORMAL,
            PROVISIONING,
            f'External provisioner is provisioning volume for claim "{meta.get("namespace")}/'
            f'{meta.get("name")}"',
        )
        self.bind_timer.expect(uid, volume, class_name or "")
        started = time.monotonic()
        try:
            try:
                pv = self._provision_or_clone(claim, storage_class, source is not None)
                self._create_pv(pv, report)
            except ProvisionError:
                raise
            except Exception as unexpected:
                # The text of an unknown exception is not shown to users: it could
                # carry anything. The log keeps the traceback for the operator.
                logger.exception("provision.unexpected_error")
                raise ProvisionError(
                    f"internal error ({type(unexpected).__name__})"
                ) from unexpected
        except ProvisionError as exc:
            elapsed = time.monotonic() - started
            self.metrics.provision_failed_total.labels(**labels).inc()
            self.metrics.provision_duration.labels(**labels).observe(elapsed)
            report(WARNING, PROVISIONING_FAILED, exc.message)
            if exc.outcome is Outcome.WAIT_FOR_CHANGE:
                memory.waiting = True
                self.bind_timer.forget(uid)
                self.queue.forget(("claim", key))
                logger.warning("provision.rejected", duration=round(elapsed, 3), error=exc.message)
            else:
                delay = self.queue.add_rate_limited(("claim", key))
                self.metrics.retries_total.inc()
                logger.warning(
                    "provision.failed",
                    duration=round(elapsed, 3),
                    error=exc.message,
                    retry_in=delay,
                )
            return
        elapsed = time.monotonic() - started
        self.memories.provisioned.add(uid)
        self.queue.forget(("claim", key))
        self.metrics.provision_total.labels(**labels).inc()
        self.metrics.provision_duration.labels(**labels).observe(elapsed)
        report(NORMAL, PROVISIONING_SUCCEEDED, f"Successfully provisioned volume {volume}")
        logger.info("provision.succeeded", duration=round(elapsed, 3))

    def _provision_or_clone(self, claim: Obj, storage_class: Obj, has_source: bool) -> Obj:
        """A claim with a data source is a clone (``clone_source`` checks the source
        first: no backend call for a source we must not or cannot copy)."""
        if not has_source:
            return self.backend.provision(claim, storage_class)
        if self.cloner is None:
            raise InvalidInput("this provisioner cannot clone volumes (spec.dataSource)")
        source_pv = clone_source(
            claim,
            storage_class,
            claims=self.claims,
            pvs=self.pvs,
            # The class's own name: a source of another backend is never copied.
            provisioner_name=str(storage_class.get("provisioner")),
        )
        return self.cloner.clone(claim, storage_class, source_pv)

    def _create_pv(self, pv: Obj, report: Report) -> None:
        """Create the PV; AlreadyExists means an earlier attempt got there first.

        A permanent refusal leaves a backend volume no PV points at; delete it here,
        since nothing else would ever find it.  If the claim was deleted meanwhile
        the PV is still created: the binder marks it Released and the delete path
        cleans it up.
        """
        meta = pv.setdefault("metadata", {})
        others = [f for f in meta.get("finalizers") or () if f != FINALIZER]
        meta["finalizers"] = [*others, FINALIZER] if self.pv_finalizer else others
        if not meta["finalizers"]:
            del meta["finalizers"]
        try:
            self.kube.create("persistentvolumes", pv)
        except KubeAlreadyExists:
            return
        except KubeAPIError as exc:
            if retryable(exc):
                raise ProvisionError(f"creating PersistentVolume failed: {exc.message}") from exc
            try:
                self.backend.delete(pv)
            except Exception as cleanup:
                report(
                    WARNING,
                    PROVISIONING_CLEANUP_FAILED,
                    f"Failed to clean up the volume after the PersistentVolume was refused: "
                    f"{getattr(cleanup, 'message', type(cleanup).__name__)}",
                )
            raise ProvisionError(
                f"the API server refused the PersistentVolume: {exc.message}",
                outcome=Outcome.WAIT_FOR_CHANGE,
            ) from exc

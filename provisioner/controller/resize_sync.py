"""Growing a bound claim: the backend volume, then the PV, then the claim's status.

The order is what makes a crash harmless. The backend grows the volume first and
reports the size it has now; a retry after a kill between the backend and the PV
update asks the backend again, and the backend compares its volume's size with the
request before growing (``contract.Expander``), so nothing grows twice. The PV's
``spec.capacity`` comes next, the claim's ``status.capacity`` last: until then the
claim still shows its old size, which is true of what it was promised.

GlusterFS needs nothing on the node, so the resize conditions are cleared at once
(``Resizing``, ``FileSystemResizePending``), as the external resizer does for
volumes without a node step. Events use the resizer's reasons.

The API server refuses a smaller request and a larger one of a class without
``allowVolumeExpansion`` (admission), so those never get here; ``resize_step``
ignores them all the same.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from provisioner.controller.contract import Expander, Outcome, ProvisionError
from provisioner.controller.predicates import (
    RESIZE_CONDITIONS,
    ResizeStep,
    class_name_of,
    resize_step,
)
from provisioner.k8s.errors import KubeAPIError
from provisioner.k8s.events import (
    NORMAL,
    RESIZING,
    VOLUME_RESIZE_FAILED,
    VOLUME_RESIZE_SUCCESSFUL,
    WARNING,
    EventRecorder,
)
from provisioner.k8s.informer import Lookup
from provisioner.k8s.kubeapi import KubeAPI
from provisioner.k8s.quantity import parse_quantity
from provisioner.k8s.workqueue import WorkQueue
from provisioner.observability import Metrics

__all__ = ["ResizeSync"]

log = structlog.get_logger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]
KIND = "resize"
"""Queue keys of this sync: ``("resize", "namespace/claim")``."""


class ResizeSync:
    """Expand bound claims through an ``Expander`` backend."""

    def __init__(
        self,
        *,
        provisioner_name: str,
        backend: Expander,
        claims: Lookup,
        classes: Lookup,
        pvs: Lookup,
        kube: KubeAPI,
        events: EventRecorder,
        queue: WorkQueue[Key],
        metrics: Metrics,
        server_resizes: Callable[[], bool] = lambda: False,
    ) -> None:
        """``server_resizes()``: the API server's own controllers grow these volumes
        (``Expander.resized_by_server``), so this sync stays out of the way."""
        self.provisioner_name = provisioner_name
        self.backend = backend
        self.claims = claims
        self.classes = classes
        self.pvs = pvs
        self.kube = kube
        self.events = events
        self.queue = queue
        self.metrics = metrics
        self.server_resizes = server_resizes
        self._lock = threading.Lock()
        self._reported: dict[str, set[tuple[str, str]]] = {}  # claim uid|request -> events
        self._waiting: set[str] = set()  # claim uid|request whose last attempt said wait

    def step(self, claim: Obj) -> ResizeStep:
        """What the claim needs (cache lookups only; no API call)."""
        volume = (claim.get("spec") or {}).get("volumeName")
        if not volume or self.server_resizes():
            return ResizeStep.NONE
        name = class_name_of(claim)
        storage_class = self.classes.get(name) if name else None
        return resize_step(claim, self.pvs.get(str(volume)), storage_class, self.provisioner_name)

    def wants(self, claim: Obj) -> bool:
        return self.step(claim) is not ResizeStep.NONE and self._memo(claim) not in self._waiting

    def forget(self, uid: str) -> None:
        with self._lock:
            self._reported = {k: v for k, v in self._reported.items() if not k.startswith(uid)}
            self._waiting = {k for k in self._waiting if not k.startswith(uid)}

    def allow_retry_of_waiting(self) -> None:
        with self._lock:
            self._waiting.clear()

    @staticmethod
    def _memo(claim: Obj) -> str:
        requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
        return f"{(claim.get('metadata') or {}).get('uid')}|{requests.get('storage')}"

    def sync(self, key: str) -> None:
        claim = self.claims.get(key)
        if claim is None:
            return
        step = self.step(claim)
        if step is ResizeStep.NONE:
            return
        memo = self._memo(claim)
        with self._lock:
            if memo in self._waiting:
                return
            reported = self._reported.setdefault(memo, set())

        def report(event_type: str, reason: str, message: str) -> None:
            if (reason, message) not in reported:
                reported.add((reason, message))
                self.events.record(claim, event_type, reason, message)

        volume = str(claim["spec"]["volumeName"])
        class_name = class_name_of(claim) or ""
        logger = log.bind(volume=volume, **{"class": class_name})
        labels = {"class": class_name}
        started = time.monotonic()
        try:
            if step is ResizeStep.EXPAND:
                report(NORMAL, RESIZING, f"External resizer is resizing volume {volume}")
                capacity = self._expand(claim, volume)
            else:
                pv = self.pvs.get(volume) or {}
                capacity = str(((pv.get("spec") or {}).get("capacity") or {}).get("storage"))
            self._finish(claim, capacity)
        except ProvisionError as exc:
            elapsed = time.monotonic() - started
            self.metrics.resize_failed_total.labels(**labels).inc()
            self.metrics.resize_duration.labels(**labels).observe(elapsed)
            report(WARNING, VOLUME_RESIZE_FAILED, exc.message)
            if exc.outcome is Outcome.WAIT_FOR_CHANGE:
                with self._lock:
                    self._waiting.add(memo)
                self.queue.forget((KIND, key))
                logger.warning("resize.rejected", error=exc.message)
            else:
                delay = self.queue.add_rate_limited((KIND, key))
                self.metrics.retries_total.inc()
                logger.warning("resize.failed", error=exc.message, retry_in=delay)
            return
        elapsed = time.monotonic() - started
        self.queue.forget((KIND, key))
        self.metrics.resize_total.labels(**labels).inc()
        self.metrics.resize_duration.labels(**labels).observe(elapsed)
        report(NORMAL, VOLUME_RESIZE_SUCCESSFUL, "Resize volume succeeded")
        logger.info("resize.succeeded", capacity=capacity, duration=round(elapsed, 3))

    def _expand(self, claim: Obj, volume: str) -> str:
        """Grow the backend volume (safe to repeat), then the PV's capacity."""
        pv = self.pvs.get(volume)
        if pv is None:
            raise ProvisionError(f"PersistentVolume {volume} is not cached yet; will retry")
        requested = parse_quantity(claim["spec"]["resources"]["requests"]["storage"])
        try:
            capacity = self.backend.expand(pv, math.ceil(requested))
        except ProvisionError:
            raise
        except Exception as unexpected:  # its text could carry anything: log only
            log.exception("resize.unexpected_error")
            raise ProvisionError(f"internal error ({type(unexpected).__name__})") from unexpected
        try:
            self.kube.patch(
                "persistentvolumes", volume, {"spec": {"capacity": {"storage": capacity}}}
            )
        except KubeAPIError as err:
            raise ProvisionError(
                f"the volume grew to {capacity}, but updating PersistentVolume {volume} "
                f"failed: {err.message}; will retry"
            ) from err
        return capacity

    def _finish(self, claim: Obj, capacity: str) -> None:
        """The claim's status: the new capacity, no resize conditions left."""
        meta = claim["metadata"]
        status = claim.get("status") or {}
        conditions = [
            c
            for c in status.get("conditions") or ()
            if (c or {}).get("type") not in RESIZE_CONDITIONS
        ]
        patch: Obj = {"status": {"capacity": {"storage": capacity}, "conditions": conditions}}
        if "storage" in (status.get("allocatedResourceStatuses") or {}):
            # Kubernetes 1.34+ (RecoverVolumeExpansionFailure): a resize in progress
            # is marked here too; clear it, as a resizer does when no node step follows.
            patch["status"]["allocatedResourceStatuses"] = {"storage": None}
        try:
            self.kube.patch(
                "persistentvolumeclaims",
                meta["name"],
                patch,
                meta["namespace"],
                subresource="status",
            )
        except KubeAPIError as err:
            raise ProvisionError(
                f"the volume grew to {capacity}, but updating the claim's status failed: "
                f"{err.message}; will retry"
            ) from err

"""Kubernetes Events on claims and volumes: what users see in ``kubectl describe``.

An event is advice, never a dependency: a failed event write is logged and
swallowed so that it can never fail or delay provisioning.  Repeats of the same
(object, type, reason, message) are folded into the first Event by bumping its
``count``, the way kubelet and kube-controller-manager do it, instead of creating
a new object each time.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Any

import structlog

from provisioner.k8s.errors import KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI
from provisioner.observability import escape_controls

log = structlog.get_logger(__name__)

NORMAL = "Normal"
WARNING = "Warning"

# Reasons shared with the sig-storage external-provisioner library, so existing
# alerts and dashboards keep working.
PROVISIONING = "Provisioning"
PROVISIONING_SUCCEEDED = "ProvisioningSucceeded"
PROVISIONING_FAILED = "ProvisioningFailed"
PROVISIONING_CLEANUP_FAILED = "ProvisioningCleanupFailed"
VOLUME_FAILED_DELETE = "VolumeFailedDelete"
# Reasons of the sig-storage external-resizer, for the same reason.
RESIZING = "Resizing"
VOLUME_RESIZE_SUCCESSFUL = "VolumeResizeSuccessful"
VOLUME_RESIZE_FAILED = "VolumeResizeFailed"

_MESSAGE_LIMIT = 1024  # the API server rejects longer event messages


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(self, kube: KubeAPI, component: str, *, max_remembered: int = 4096) -> None:
        self.kube = kube
        self.component = component
        self.instance = socket.gethostname()
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str, str, str], tuple[str, str, int]] = {}
        self._max_remembered = max_remembered
        self._sequence = itertools.count()
        self.written = 0
        self.failed = 0

    def record(
        self,
        obj: dict[str, Any],
        event_type: str,
        reason: str,
        message: str,
        *,
        kind: str | None = None,
    ) -> None:
        """Write (or bump) an event about ``obj``; never raises.

        ``kind`` defaults from the object, else by scope: the items of a List
        carry no ``kind``, and we only ever report on claims and volumes.
        """
        meta = obj.get("metadata") or {}
        kind = kind or obj.get("kind")
        if not kind:
            kind = "PersistentVolumeClaim" if meta.get("namespace") else "PersistentVolume"
        try:
            # Messages quote tenant-written strings: no control characters reach an event.
            text = escape_controls(message)[:_MESSAGE_LIMIT]
            self._record(obj, kind, event_type, reason, text)
        except Exception as exc:
            self.failed += 1
            log.warning("event.write_failed", reason=reason, error=str(exc)[:200])

    def _record(
        self, obj: dict[str, Any], kind: str, event_type: str, reason: str, message: str
    ) -> None:
        meta = obj.get("metadata") or {}
        # Cluster-scoped objects (PVs) get their events in "default", as in Kubernetes.
        namespace = meta.get("namespace") or "default"
        fold_key = (str(meta.get("uid") or meta.get("name")), event_type, reason, message)
        now = _now()
        with self._lock:
            previous = self._seen.get(fold_key)
        if previous is not None:
            name, first, count = previous
            try:
                self.kube.patch(
                    "events", name, {"count": count + 1, "lastTimestamp": now}, namespace
                )
                with self._lock:
                    self._seen[fold_key] = (name, first, count + 1)
                self.written += 1
                return
            except KubeNotFound:
                pass  # expired (events live an hour): start a new one
        name = f"{meta.get('name')}.{time.time_ns():x}{next(self._sequence) % 256:02x}"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": {
                "kind": kind,
                "apiVersion": obj.get("apiVersion") or "v1",
                "namespace": meta.get("namespace"),
                "name": meta.get("name"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": event_type,
            "source": {"component": self.component},
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "reportingComponent": self.component,
            "reportingInstance": self.instance,
        }
        self.kube.create("events", body, namespace)
        self.written += 1
        with self._lock:
            if len(self._seen) >= self._max_remembered:
                self._seen.pop(next(iter(self._seen)))
            self._seen[fold_key] = (name, now, 1)

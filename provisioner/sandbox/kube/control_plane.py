"""Emulation of the kube-controller-manager loops a storage provisioner relies on.

The PV controller (``pv_controller.py``), protection finalizers, namespace
termination (contents deleted, then the namespace) and the garbage collector
(``garbage.py``: owner references, foreground and orphan deletion).

It runs on one thread, woken by store changes through a condition variable (no polling):
a store listener marks the affected keys dirty and each key is reconciled from the
current state, so the loop converges however writes interleave. It writes through the
registry, so its writes are ordinary API writes (new resourceVersion, watch events).
Objects inserted with ``preload`` bypass it (they are taken as already reconciled).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog

from .garbage import GarbageCollector
from .pv_controller import PVController
from .registry import Registry
from .resources import RESOURCES, lookup
from .status import ApiError
from .store import Event

Obj = dict[str, Any]
Item = tuple[str, ...]
log = structlog.get_logger(__name__)

_NAMESPACED = sorted({r.storage_key for r in RESOURCES if r.namespaced})


class ControlPlane:
    def __init__(self, registry: Registry, *, version: str = "1.25.0") -> None:
        self._registry = registry
        self._store = registry.store
        self._cond = threading.Condition()
        self._dirty: dict[Item, None] = {}
        self._busy = False
        self._stopped = False
        self._volumes = PVController(registry, version=version)
        self._garbage = GarbageCollector(registry)
        self._thread: threading.Thread | None = None
        self._store.add_listener(self._on_change)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kube-control-plane", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every change seen so far has been reconciled (tests use this)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._dirty or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # -- change intake (called under the store lock: quick, no writes) ----------

    def _on_change(self, storage: str, event: Event) -> None:
        meta = event.entry.obj["metadata"]
        items = self._volumes.observe(storage, event) + self._garbage.observe(storage, event)
        if storage == "namespaces":
            items.append(("ns", meta["name"]))
        if event.type == "DELETED" and meta.get("namespace"):
            ns = self._store.get("namespaces", "", meta["namespace"])
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                items.append(("ns", meta["namespace"]))
        if items:
            with self._cond:
                for item in items:
                    self._dirty[item] = None
                self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._dirty and not self._stopped:
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait()
                if self._stopped:
                    return
                batch = list(self._dirty)
                self._dirty.clear()
                self._busy = True
            for item in batch:
                try:
                    self._reconcile(item)
                except ApiError as exc:  # e.g. an injected fault: retry on next change
                    log.debug("kube_sandbox.reconcile_failed", item=str(item), error=exc.message)
                except Exception:
                    log.exception("kube_sandbox.reconcile_failed", item=str(item))

    def _reconcile(self, item: Item) -> None:
        if item[0] == "pvc":
            self._volumes.sync_claim(item[1], item[2])
        elif item[0] == "pv":
            self._volumes.sync_volume(item[1])
        elif item[0] == "unbound":
            self._volumes.sync_unbound_claims()
        elif item[0] == "ns":
            self._sync_namespace(item[1])
        elif item[0] in ("gc", "gc-owner"):
            self._garbage.sync(item)

    # -- namespaces ----------------------------------------------------------------

    def _sync_namespace(self, name: str) -> None:
        ns = self._store.get("namespaces", "", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        remaining = 0
        for storage in _NAMESPACED:
            rt = lookup("", "v1", storage) or next(r for r in RESOURCES if r.plural == storage)
            _, entries = self._store.snapshot(storage, name)
            for entry in entries:
                remaining += 1
                if not entry.obj["metadata"].get("deletionTimestamp"):
                    try:
                        self._registry.delete(rt, name, entry.obj["metadata"]["name"])
                    except ApiError as exc:
                        if exc.code != 404:
                            raise
        if remaining == 0 or all(self._store.count(s, name) == 0 for s in _NAMESPACED):
            self._store.remove("namespaces", "", name)

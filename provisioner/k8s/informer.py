"""Keep a local cache of one resource in step with the API server: list, then watch.

The loop, as client-go's reflector does it:

1. list in pages (``limit``/``continue``), remember the list's resourceVersion;
2. watch from that version with bookmarks, so a quiet resource still advances it;
3. the stream ends (server ``timeoutSeconds``, a dropped connection, a socket
   silent past the read timeout): watch again from the last version seen;
4. 410 Gone (the version fell out of the server's window): list again, and
   deliver ``on_delete`` for cached objects the new list no longer has — they
   vanished while we were not looking, and deletes must never be missed.

Cached objects are the parsed JSON dicts as received and are shared, not copied:
callers must treat them as immutable.  Handlers run on the informer's thread and
should only enqueue keys.

Memory: a cache holds every object of its resource, so at 10,000 claims what is
kept per object decides the process's size.  ``transform`` (client-go's
``SetTransform``) maps each object before it is cached and handed to handlers;
``strip_managed_fields`` drops what the controller never reads (``managedFields``
is often the largest part of an object on a real API server), and
``metadata_only`` keeps just the identity of objects whose presence is all that
matters. ``keys_only`` goes further for those (the Endpoints/Service pairs, 100,000
objects at 50,000 PVs): the cache holds the key and one shared empty marker, and
handlers get the object from the event (or, for a delete found by a relist, a stub
with only its name and namespace).
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from provisioner.k8s.errors import KubeAPIError, KubeForbidden, KubeGone
from provisioner.k8s.kubeapi import KubeAPI, KubeObject
from provisioner.k8s.watching import WatchStream

log = structlog.get_logger(__name__)

Transform = Callable[[KubeObject], KubeObject]
AddHandler = Callable[[KubeObject], None]
UpdateHandler = Callable[[KubeObject, KubeObject], None]
DeleteHandler = Callable[[KubeObject], None]


class Lookup(Protocol):
    """Read access to one cache by key, what the sync code needs of an ``Informer``."""

    def get(self, key: str) -> KubeObject | None: ...


def strip_managed_fields(obj: KubeObject) -> KubeObject:
    """The object without ``metadata.managedFields`` (server-side apply bookkeeping)."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        del meta["managedFields"]  # the dict was parsed for us alone: no copy needed
    return obj


_IDENTITY_FIELDS = ("name", "namespace", "uid", "resourceVersion", "labels", "deletionTimestamp")


def metadata_only(obj: KubeObject) -> KubeObject:
    """``{"metadata": {...identity...}}``: for caches that only answer "does it exist"."""
    meta = obj.get("metadata") or {}
    return {"metadata": {k: meta[k] for k in _IDENTITY_FIELDS if k in meta}}


_PRESENT: KubeObject = {}
"""What a ``keys_only`` cache holds for every object (falsy: handlers get the event's)."""


def _stub(key: str) -> KubeObject:
    """The identity of a ``keys_only`` object that went while nobody watched."""
    namespace, _, name = key.rpartition("/")
    meta = {"name": name, "namespace": namespace} if namespace else {"name": name}
    return {"metadata": meta}


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while a list is parsed and cached.

    A list of 50,000 objects allocates millions of dicts; each allocation burst
    triggers collections that walk every container alive, the caches included, so
    the collector cost more than the parsing (bench/scale.py at 50,000: half the
    start-up CPU). Objects from JSON hold no cycles; what they free is freed by
    reference counting. Nested use from several informer threads is counted; the
    collector is on again when the last one leaves (if it was on before).
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def object_key(obj: KubeObject) -> str:
    """``namespace/name``, or ``name`` for cluster-scoped objects."""
    meta = obj.get("metadata") or {}
    namespace = meta.get("namespace")
    return f"{namespace}/{meta['name']}" if namespace else str(meta["name"])


@dataclass
class _Handlers:
    on_add: AddHandler | None
    on_update: UpdateHandler | None
    on_delete: DeleteHandler | None


class Informer:
    def __init__(
        self,
        kube: KubeAPI,
        resource: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        page_size: int = 500,
        watch_timeout: int = 300,
        retry_base: float = 0.5,
        retry_cap: float = 30.0,
        transform: Transform | None = None,
        keys_only: bool = False,
    ) -> None:
        self.kube = kube
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self.transform = transform
        self.keys_only = keys_only
        self._cache: dict[str, KubeObject] = {}
        self._lock = threading.Lock()
        self._handlers: builtins.list[_Handlers] = []
        self._synced = threading.Event()
        self.forbidden: KubeForbidden | None = None  # the first list's 403, if any
        self._first_answer = threading.Event()  # synced, or the first list refused
        self._stopped = threading.Event()
        self._stream: WatchStream | None = None
        self._thread: threading.Thread | None = None
        self.resource_version = ""
        self.relists = 0
        self.watches = 0

    # -- wiring -----------------------------------------------------------

    def add_handlers(
        self,
        *,
        on_add: AddHandler | None = None,
        on_update: UpdateHandler | None = None,
        on_delete: DeleteHandler | None = None,
    ) -> None:
        """Register before ``start``; handlers see every object from the first list on."""
        self._handlers.append(_Handlers(on_add, on_update, on_delete))

    def start(self) -> None:
        """Start (or restart after ``stop``): the first thing the thread does is list,
        which also reports what changed while it was stopped."""
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"informer-{self.resource}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopped.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        thread = self._thread
        # ident is None between Thread() and start(): a stop racing a start (the
        # standby's warm-up, say) has nothing to join yet
        if thread is not None and thread.ident is not None:
            thread.join(timeout)

    # -- cache ------------------------------------------------------------

    def has_synced(self) -> bool:
        return self._synced.is_set()

    def alive(self) -> bool:
        """False once the watch thread has ended without ``stop`` (a liveness check)."""
        thread = self._thread
        return thread is None or thread.is_alive() or self._stopped.is_set()

    def wait_for_sync(self, timeout: float) -> bool:
        """True once listed; raises ``KubeForbidden`` as soon as the first list is
        refused (no retry can grant a permission: the operator must)."""
        self._first_answer.wait(timeout)
        if self._synced.is_set():
            return True
        if self.forbidden is not None:
            raise self.forbidden
        return False

    def get(self, key: str) -> KubeObject | None:
        with self._lock:
            return self._cache.get(key)

    def list(self) -> builtins.list[KubeObject]:
        with self._lock:
            return list(self._cache.values())

    def keys(self) -> builtins.list[str]:
        with self._lock:
            return list(self._cache)

    # -- the loop ---------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        need_list = True
        while not self._stopped.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                self._watch_once()
                failures = 0
            except KubeGone:
                log.info("informer.relist", resource=self.resource, reason="resourceVersion gone")
                need_list = True
            except Exception as exc:  # keep the cache alive through any API trouble
                if self._stopped.is_set():
                    return
                if isinstance(exc, KubeForbidden) and not self._synced.is_set():
                    self.forbidden = exc
                    self._first_answer.set()
                failures += 1
                delay = min(self.retry_cap, self.retry_base * 2 ** min(failures - 1, 16))
                log.warning(
                    "informer.retry",
                    resource=self.resource,
                    attempt=failures,
                    retry_in=delay,
                    error=str(exc)[:200],
                )
                if isinstance(exc, KubeAPIError) and exc.status == 0 and not need_list:
                    pass  # transport trouble: watch again from the same version
                else:
                    need_list = True
                self._stopped.wait(delay)

    def _list_all(self) -> tuple[dict[str, KubeObject], str]:
        items: dict[str, KubeObject] = {}
        token: str | None = None
        while True:
            page = self.kube.list(
                self.resource,
                self.namespace,
                label_selector=self.label_selector,
                limit=self.page_size,
                continue_token=token,
            )
            transform = self.transform
            for item in page.get("items") or []:
                if transform is not None:
                    item = transform(item)
                items[object_key(item)] = _PRESENT if self.keys_only else item
            meta = page.get("metadata") or {}
            token = meta.get("continue") or None
            if not token:
                return items, str(meta.get("resourceVersion") or "")

    def _relist(self) -> None:
        with paused_gc():
            fresh, version = self._list_all()
        with self._lock:
            old = self._cache
            self._cache = fresh
            self.resource_version = version
            self.relists += 1
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self._dispatch_add(obj or _stub(key))
            elif _version(before) != _version(obj):
                self._dispatch_update(before, obj)
        for key, obj in old.items():
            if key not in fresh:
                self._dispatch_delete(obj or _stub(key))
        self._synced.set()
        self._first_answer.set()

    def _watch_once(self) -> None:
        stream = self.kube.open_watch(
            self.resource,
            namespace=self.namespace,
            label_selector=self.label_selector,
            resource_version=self.resource_version,
            timeout_seconds=self.watch_timeout,
        )
        self._stream = stream
        self.watches += 1
        try:
            if self._stopped.is_set():
                return
            for event in stream:
                if self._stopped.is_set():
                    return
                self._apply(event)
        finally:
            self._stream = None
            stream.close()

    def _apply(self, event: KubeObject) -> None:
        kind = event.get("type")
        obj: KubeObject = event.get("object") or {}
        version = _version(obj)
        if kind != "BOOKMARK" and self.transform is not None:
            obj = self.transform(obj)
        if kind == "BOOKMARK":
            if version:
                self.resource_version = version
            return
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            log.warning("informer.unknown_event", resource=self.resource, type=str(kind))
            return
        key = object_key(obj)
        with self._lock:
            before = self._cache.get(key)
            if kind == "DELETED":
                self._cache.pop(key, None)
            else:
                self._cache[key] = _PRESENT if self.keys_only else obj
            if version:
                self.resource_version = version
        if kind == "DELETED":
            self._dispatch_delete(before or obj)
        elif before is None:
            self._dispatch_add(obj)
        elif self.keys_only:
            self._dispatch_update(obj, obj)
        else:
            self._dispatch_update(before, obj)

    # -- handlers ---------------------------------------------------------

    def _dispatch_add(self, obj: KubeObject) -> None:
        for h in self._handlers:
            if h.on_add is not None:
                self._call(h.on_add, obj)

    def _dispatch_update(self, old: KubeObject, new: KubeObject) -> None:
        for h in self._handlers:
            if h.on_update is not None:
                self._call(h.on_update, old, new)

    def _dispatch_delete(self, obj: KubeObject) -> None:
        for h in self._handlers:
            if h.on_delete is not None:
                self._call(h.on_delete, obj)

    def _call(self, handler: Callable[..., None], *args: Any) -> None:
        try:
            handler(*args)
        except Exception:
            log.exception("informer.handler_failed", resource=self.resource)


def _version(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")

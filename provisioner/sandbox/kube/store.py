"""The object store: immutable JSON dicts, one global resourceVersion, watch history.

Why this shape:

- Objects are stored as plain dicts and never mutated after they are stored; every
  write replaces the entry. A list therefore only needs a shallow snapshot of a dict
  taken under the lock, and each entry's JSON is serialized once and reused by every
  list that returns it.
- Every write takes the next value of one global counter as its resourceVersion, as
  etcd revisions do, and appends an event to a bounded ring per resource
  (``watch_cache_size``, default 1000). A watch that asks for a resourceVersion older
  than the oldest retained event gets 410 Expired, which is how a real API server
  behaves once its watch cache has moved on.
- Events are pushed to a per-watch queue under the lock (cheap, never blocks), and
  each watch filters and serializes on its own thread, so slow readers never slow
  writers.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
Listener = Callable[[str, "Event"], None]
MAX_WATCH_BACKLOG = 10_000  # undelivered events per watch before it is closed


def now() -> str:
    """A timestamp as the API server writes them (seconds, UTC)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def list_item(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


class Entry:
    """A stored object with its JSON serialized at most once."""

    __slots__ = ("_item_raw", "_raw", "obj")

    def __init__(self, obj: Obj) -> None:
        self.obj = obj
        self._raw: bytes | None = None
        self._item_raw: bytes | None = None

    def raw(self) -> bytes:
        raw = self._raw
        if raw is None:
            raw = self._raw = dumps(self.obj)
        return raw

    def item_raw(self) -> bytes:
        """The JSON as an item of a List: a real server leaves out kind and apiVersion
        there (they are the List's, minus "List"); watch events and GETs keep them."""
        raw = self._item_raw
        if raw is None:
            raw = self._item_raw = dumps(list_item(self.obj))
        return raw


class Event:
    """One change; ``old`` lets selector-filtered watches turn edits into ADDED/DELETED."""

    __slots__ = ("entry", "old", "rv", "type")

    def __init__(self, rv: int, type_: str, entry: Entry, old: Obj | None) -> None:
        self.rv = rv
        self.type = type_
        self.entry = entry
        self.old = old


class WatchExpired(Exception):
    """The requested resourceVersion is older than the retained history."""


class Watcher:
    """A registered watch: the store feeds ``queue``; ``None`` in it means "stop"."""

    def __init__(self, storage: str, namespace: str | None) -> None:
        self.storage = storage
        self.namespace = namespace
        self.queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self.closed = False
        self.initial = 0  # synthetic ADDED events queued first (the current state)

    def close(self) -> None:
        self.closed = True
        self.queue.put(None)


def key_of(obj: Obj) -> Key:
    meta = obj["metadata"]
    return (meta.get("namespace") or "", meta["name"])


class Store:
    def __init__(self, *, watch_cache_size: int = 1000) -> None:
        self.lock = threading.RLock()
        self._watchers_changed = threading.Condition(self.lock)
        self._rv = 1
        self._cache_size = watch_cache_size
        self._objects: dict[str, dict[Key, Entry]] = {}
        self._history: dict[str, deque[Event]] = {}
        self._evicted_rv: dict[str, int] = {}
        self._watchers: dict[str, list[Watcher]] = {}
        self._listeners: list[Listener] = []

    # -- reading ---------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, storage: str, namespace: str, name: str) -> Obj | None:
        """The stored dict itself: callers must treat it as read-only."""
        entry = self._objects.get(storage, {}).get((namespace, name))
        return None if entry is None else entry.obj

    def snapshot(self, storage: str, namespace: str | None = None) -> tuple[int, list[Entry]]:
        """Entries sorted by (namespace, name), and the resourceVersion they are valid at."""
        with self.lock:
            rv = self._rv
            items = list(self._objects.get(storage, {}).items())
        if namespace:
            items = [kv for kv in items if kv[0][0] == namespace]
        items.sort(key=lambda kv: kv[0])
        return rv, [entry for _, entry in items]

    def count(self, storage: str, namespace: str) -> int:
        with self.lock:
            return sum(1 for k in self._objects.get(storage, {}) if k[0] == namespace)

    # -- writing (callers hold no references to ``obj`` afterwards) -------------

    def add_listener(self, listener: Listener) -> None:
        """Called under the lock for every change: must be quick and must not write."""
        with self.lock:
            self._listeners.append(listener)

    def put(self, storage: str, obj: Obj, event_type: str, old: Obj | None) -> Obj:
        """Store ``obj`` (created or modified) with the next resourceVersion."""
        with self.lock:
            self._rv += 1
            obj["metadata"]["resourceVersion"] = str(self._rv)
            entry = Entry(obj)
            self._objects.setdefault(storage, {})[key_of(obj)] = entry
            self._publish(storage, Event(self._rv, event_type, entry, old))
            return obj

    def remove(self, storage: str, namespace: str, name: str) -> Obj | None:
        """Delete for good; the DELETED event carries the deletion's resourceVersion."""
        with self.lock:
            entry = self._objects.get(storage, {}).pop((namespace, name), None)
            if entry is None:
                return None
            self._rv += 1
            final = dict(entry.obj)
            final["metadata"] = {**entry.obj["metadata"], "resourceVersion": str(self._rv)}
            self._publish(storage, Event(self._rv, "DELETED", Entry(final), entry.obj))
            return final

    def preload(self, storage: str, objs: Iterable[Obj]) -> int:
        """Insert many objects at one resourceVersion, without watch events.

        Watches that start from a resourceVersion older than the preload get 410 and
        must relist, so nobody can miss the preloaded objects silently.
        """
        with self.lock:
            self._rv += 1
            rv = str(self._rv)
            table = self._objects.setdefault(storage, {})
            for obj in objs:
                obj["metadata"]["resourceVersion"] = rv
                table[key_of(obj)] = Entry(obj)
            self._evicted_rv[storage] = self._rv - 1
            return self._rv

    def _publish(self, storage: str, event: Event) -> None:
        ring = self._history.get(storage)
        if ring is None:
            ring = self._history[storage] = deque(maxlen=self._cache_size)
        if len(ring) == ring.maxlen:
            self._evicted_rv[storage] = ring[0].rv
        ring.append(event)
        watchers = self._watchers.get(storage, [])
        for watcher in list(watchers):
            ns = watcher.namespace
            if ns is None or ns == (event.entry.obj["metadata"].get("namespace") or ""):
                if watcher.queue.qsize() >= MAX_WATCH_BACKLOG:
                    # Like the real server with a reader that cannot keep up: close the
                    # watch; the client resumes from its last resourceVersion.
                    watcher.close()
                    watchers.remove(watcher)
                    continue
                watcher.queue.put(event)
        for listener in self._listeners:
            listener(storage, event)

    # -- watching --------------------------------------------------------------

    def watch(self, storage: str, namespace: str | None, resource_version: str | None) -> Watcher:
        """Register a watch; raises WatchExpired when the history cannot serve it.

        With no resourceVersion (or "0") the watch starts with a synthetic ADDED for
        every current object, like the real server's "get state and start at most
        recent" semantics.
        """
        watcher = Watcher(storage, namespace)
        with self.lock:
            if resource_version in (None, "", "0"):
                _, entries = self.snapshot(storage, namespace)
                for entry in entries:
                    rv = int(entry.obj["metadata"]["resourceVersion"])
                    watcher.queue.put(Event(rv, "ADDED", entry, None))
                watcher.initial = len(entries)
            else:
                since = int(resource_version)
                if since < self._evicted_rv.get(storage, 0):
                    raise WatchExpired(
                        f"too old resource version: {since} ({self._evicted_rv[storage] + 1})"
                    )
                for event in self._history.get(storage, ()):
                    if event.rv > since and (
                        namespace is None
                        or namespace == (event.entry.obj["metadata"].get("namespace") or "")
                    ):
                        watcher.queue.put(event)
            self._watchers.setdefault(storage, []).append(watcher)
            self._watchers_changed.notify_all()
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        with self.lock:
            watchers = self._watchers.get(watcher.storage, [])
            if watcher in watchers:
                watchers.remove(watcher)
            self._watchers_changed.notify_all()

    def open_watches(self, storage: str | None = None) -> int:
        with self.lock:
            return sum(len(ws) for name, ws in self._watchers.items() if storage in (None, name))

    def wait_open_watches(
        self, count: int, storage: str | None = None, timeout: float = 5.0
    ) -> bool:
        """Block until exactly ``count`` watches are open (tests use this)."""
        with self._watchers_changed:
            return self._watchers_changed.wait_for(
                lambda: self.open_watches(storage) == count, timeout
            )

    def bookmark_rv(self, watcher: Watcher) -> int | None:
        """The global resourceVersion if the watcher has been sent everything up to it."""
        with self.lock:
            return self._rv if watcher.queue.empty() else None

    def drop_watchers(self, storage: str | None = None) -> int:
        with self.lock:
            dropped = 0
            for name, watchers in self._watchers.items():
                if storage is None or storage == name:
                    for watcher in watchers:
                        watcher.close()
                        dropped += 1
                    watchers.clear()
            self._watchers_changed.notify_all()
            return dropped

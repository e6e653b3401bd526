"""Turning a store watcher into the lines of a watch response.

One JSON object per line (``{"type": ..., "object": ...}``), as the API server streams
them. Label/field selectors apply the way the watch cache applies them: an edit that
makes an object start (stop) matching is sent as ADDED (DELETED). Bookmarks carry the
newest resourceVersion the watcher is known to be complete up to, so a client that
resumes from a bookmark never misses an event.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .registry import Registry
from .resources import ResourceType
from .status import gone_status
from .store import Event, Store, Watcher, dumps
from .tables import table

Obj = dict[str, Any]
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
_LIVENESS_INTERVAL = 1.0  # seconds between checks that a quiet watch's client is still there


def event_line(event_type: str, raw_object: bytes) -> bytes:
    return b'{"type":"' + event_type.encode() + b'","object":' + raw_object + b"}\n"


def expired_line(message: str) -> bytes:
    return event_line("ERROR", dumps(gone_status(message)))


class WatchStream:
    """Iterate to get encoded lines; ends at the timeout, on drop, or on ``stopping``."""

    def __init__(
        self,
        store: Store,
        rt: ResourceType,
        watcher: Watcher,
        match: Callable[[Obj], bool] | None,
        *,
        start_rv: int,
        timeout: float,
        bookmarks: bool,
        bookmark_interval: float,
        stopping: threading.Event,
        table_include: str | None = None,
        initial_events_end: bool = False,
    ) -> None:
        """``initial_events_end``: after the current state (``sendInitialEvents``), a
        bookmark annotated ``k8s.io/initial-events-end`` says the state is complete."""
        self._table_include = table_include
        self._initial_left = watcher.initial if initial_events_end else -1
        # Set by the server: a client that hangs up on a quiet watch is only noticed
        # by looking, and until then its queue would keep collecting events.
        self.client_gone: Callable[[], bool] | None = None
        self._store = store
        self._rt = rt
        self._watcher = watcher
        self._match = match
        self._last_rv = start_rv
        self._timeout = timeout
        self._bookmarks = bookmarks
        self._interval = bookmark_interval
        self._stopping = stopping
        self.dropped = False

    def _render(self, event: Event) -> bytes | None:
        obj = event.entry.obj
        kind = event.type
        if self._match is not None:
            now_matches = self._match(obj)
            if kind == "MODIFIED":
                before = event.old is not None and self._match(event.old)
                if now_matches and not before:
                    kind = "ADDED"
                elif before and not now_matches:
                    kind = "DELETED"
                elif not now_matches:
                    return None
            elif not now_matches:
                return None
        if self._table_include is not None:
            shown = Registry.present(self._rt, obj)
            rv = shown["metadata"]["resourceVersion"]
            raw = dumps(table(self._rt, [shown], rv, self._table_include))
        elif self._rt.storage:
            raw = dumps(Registry.present(self._rt, obj))
        else:
            raw = event.entry.raw()
        return event_line(kind, raw)

    def _bookmark(self, *, initial_end: bool = False) -> bytes:
        rv = self._store.bookmark_rv(self._watcher)
        if rv is not None:
            self._last_rv = max(self._last_rv, rv)
        meta: Obj = {"resourceVersion": str(self._last_rv)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        body = {"kind": self._rt.kind, "apiVersion": self._rt.api_version, "metadata": meta}
        return event_line("BOOKMARK", dumps(body))

    def __iter__(self) -> Iterator[bytes]:
        start = time.monotonic()
        deadline = start + self._timeout
        next_bookmark = start + self._interval
        try:
            if self._initial_left == 0:
                self._initial_left = -1
                yield self._bookmark(initial_end=True)
            while not self._stopping.is_set():
                now = time.monotonic()
                if now >= deadline:
                    if self._bookmarks:
                        yield self._bookmark()
                    return
                wake = min(deadline, next_bookmark) if self._bookmarks else deadline
                wake = min(wake, now + _LIVENESS_INTERVAL)
                try:
                    event = self._watcher.queue.get(timeout=max(0.0, wake - now))
                except queue.Empty:
                    if self.client_gone is not None and self.client_gone():
                        return
                    if self._bookmarks and time.monotonic() >= next_bookmark:
                        next_bookmark = time.monotonic() + self._interval
                        yield self._bookmark()
                    continue
                if event is None or self._watcher.closed:
                    self.dropped = True
                    return
                self._last_rv = max(self._last_rv, event.rv)
                line = self._render(event)
                if line is not None:
                    yield line
                if self._initial_left > 0:
                    self._initial_left -= 1
                    if self._initial_left == 0:
                        self._initial_left = -1
                        yield self._bookmark(initial_end=True)
        finally:
            self._store.unwatch(self._watcher)

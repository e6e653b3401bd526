"""An overall deadline for one HTTP request, from connect to the last body byte.

``requests`` only knows per-operation timeouts: one for the connect and one bounding
*each* read. A server that sends a byte now and then, each just inside the read
timeout, keeps a request alive as long as it likes, in the headers (``http.client``
reads up to 100 header lines of 64 KiB each) as well as in the body. So a watchdog
thread shuts the request's socket down when the deadline passes: a read blocked on it
returns at once, the request fails, and ``RequestWatch.expired`` tells the transport
why. One watchdog thread serves every request of the process (a ``threading.Timer``
per request cost a thread start, about 0.2 ms, on every request).

Finding that socket: sessions the client makes for itself mount ``WatchedAdapter``,
whose connection pools tell the watch of the calling thread which connection it took
(``_get_conn``) and when it gave it back (``_put_conn``). A connection already back in
the pool, possibly serving another request, is never touched: giving it back and
shooting it are serialised by the watch's lock. A session the caller passed in has
adapters of its own, which we leave alone: there the deadline is only checked between
body chunks, and a server trickling bytes is bounded by nothing but the read timeout
per byte. (The provisioner always lets the client make its session.)
The deadline runs on real time (``time.monotonic``), not on the client's injectable
clock: it is about real sockets.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from types import TracebackType
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager, ProxyManager

_OWNER = "_heketi_request_watch"
"""Attribute set on a urllib3 connection while a watched request holds it."""

_RESHOOT = 0.05
"""Seconds between repeated shutdowns after expiry: a connect still in progress
when the deadline passed only has a socket to shut down once it completes."""

_local = threading.local()


class RequestWatch:
    """Context manager for one request: at ``seconds``, shut down what it holds."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._done = False
        self._lock = threading.Lock()
        self._conns: list[Any] = []

    @property
    def done(self) -> bool:
        return self._done

    def __enter__(self) -> RequestWatch:
        _watchdog.schedule(time.monotonic() + self.seconds, self)
        _local.watch = self
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _local.watch = None
        with self._lock:
            self._done = True
            for conn in self._conns:
                if getattr(conn, _OWNER, None) is self:
                    setattr(conn, _OWNER, None)
            self._conns.clear()
        _watchdog.finished()

    def adopt(self, conn: Any) -> None:
        """``conn`` now carries this request: shut it down if the deadline passes."""
        with self._lock:
            if self._done:
                return
            setattr(conn, _OWNER, self)
            self._conns.append(conn)
            if self.expired:
                _shut(conn)

    def release(self, conn: Any) -> None:
        """``conn`` goes back to its pool, so it is no longer ours to shut down."""
        with self._lock:
            if getattr(conn, _OWNER, None) is self:
                setattr(conn, _OWNER, None)

    def _fire(self) -> bool:
        """Shut down what the request holds; False once it is over (nothing to do)."""
        with self._lock:
            if self._done:
                return False
            self.expired = True
            for conn in self._conns:
                if getattr(conn, _OWNER, None) is self:
                    _shut(conn)
            return True


class _Watchdog:
    """One daemon thread that fires every watch whose deadline has passed.

    Watches are kept in a heap by deadline. One that ends in time stays there until
    its deadline comes up (removing it earlier would cost a heap search per request),
    but the heap is rebuilt from the live ones whenever it holds more than twice as
    many as are live, so it stays within twice the number of requests in flight.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, RequestWatch]] = []
        self._order = itertools.count()
        self._live = 0
        self._thread: threading.Thread | None = None

    def schedule(self, at: float, watch: RequestWatch, *, again: bool = False) -> None:
        with self._cond:
            if not again:
                self._live += 1
            entry = (at, next(self._order), watch)
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="heketi-request-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0] is entry:
                self._cond.notify()  # earlier than what the thread sleeps towards

    def finished(self) -> None:
        with self._cond:
            self._live -= 1
            if len(self._heap) > 64 and len(self._heap) > 2 * self._live:
                self._heap = [e for e in self._heap if not e[2].done]
                heapq.heapify(self._heap)

    def pending(self) -> int:
        """Entries held (live or not yet dropped), for tests."""
        with self._cond:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    while self._heap and self._heap[0][2].done:
                        heapq.heappop(self._heap)
                    if not self._heap:
                        self._cond.wait()
                        continue
                    wait = self._heap[0][0] - time.monotonic()
                    if wait <= 0:
                        watch = heapq.heappop(self._heap)[2]
                        break
                    self._cond.wait(wait)
            if watch._fire():
                self.schedule(time.monotonic() + _RESHOOT, watch, again=True)


_watchdog = _Watchdog()


def _shut(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def current_watch() -> RequestWatch | None:
    watch: RequestWatch | None = getattr(_local, "watch", None)
    return watch


class _WatchedPoolMixin:
    """Tells the calling thread's watch which connection its request uses."""

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)  # type: ignore[misc]
        watch = current_watch()
        if watch is not None and conn is not None:
            watch.adopt(conn)
        return conn

    def _put_conn(self, conn: Any) -> None:
        owner = getattr(conn, _OWNER, None) if conn is not None else None
        if isinstance(owner, RequestWatch):
            owner.release(conn)
        super()._put_conn(conn)  # type: ignore[misc]


class _WatchedHTTPPool(_WatchedPoolMixin, HTTPConnectionPool):
    pass


class _WatchedHTTPSPool(_WatchedPoolMixin, HTTPSConnectionPool):
    pass


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class WatchedAdapter(HTTPAdapter):
    """An ``HTTPAdapter`` whose pools report their connections to ``RequestWatch``."""

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_WATCHED_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is ProxyManager:  # SOCKS managers bring pools of their own
            manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
        return manager

"""Heketi clients shared by every claim, and the cap on operations per Heketi server.

A ``HeketiClient`` holds a connection pool, so one per (server, user, key) is kept
and reused instead of one per claim. The cap exists because Heketi itself refuses
work beyond ``max_inflight_operations`` (default 8) with a 429 that carries no
Retry-After: queueing a little in-process is cheaper and fairer than having
workers bounce off Heketi and back off for tens of seconds.

The key is part of the cache key (a rotated Secret must produce a new client), but
``HeketiTarget`` keeps it out of its ``repr`` so that no log line or exception
that prints a target can carry it.

Clients and remembered keys are kept for at most ``MAX_TARGETS`` targets, least
recently used first out: servers are named only by StorageClasses and PVs, but a
key rotated every hour for a year must not leave 8,760 connection pools behind.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from heketi_client import HeketiClient, ResponseObserver
from heketi_client.retries import RetryPolicy

__all__ = ["DEFAULT_CONCURRENCY", "HeketiPool", "HeketiTarget", "normalise_url"]

DEFAULT_CONCURRENCY = 8
"""Heketi's own default ``max_inflight_operations``; going above it only buys 429s."""

MAX_TARGETS = 64
"""Clients (and remembered keys) kept at once; the oldest unused one is closed."""


def normalise_url(url: str) -> str:
    """One spelling per server, so that ``http://h:8080/`` and ``http://h:8080`` share."""
    return url.rstrip("/")


@dataclass(frozen=True)
class HeketiTarget:
    """Who to talk to, as whom. ``user`` empty means Heketi runs without auth."""

    url: str
    user: str = ""
    key: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", normalise_url(self.url))


ClientFactory = Callable[[HeketiTarget], HeketiClient]


class HeketiPool:
    """Thread-safe cache of clients plus one semaphore per Heketi server."""

    def __init__(
        self,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float | tuple[float, float] = (5.0, 30.0),
        operation_timeout: float = 600.0,
        retry: RetryPolicy | None = None,
        client_factory: ClientFactory | None = None,
        on_response: ResponseObserver | None = None,
    ) -> None:
        """``on_response`` is handed to every client made here (the metrics hook)."""
        if concurrency < 1:
            raise ValueError(f"heketi concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self._timeout = timeout
        self._operation_timeout = operation_timeout
        self._retry = retry
        self._on_response = on_response
        self._factory = client_factory or self._default_client
        self._lock = threading.Lock()
        self._clients: OrderedDict[HeketiTarget, HeketiClient] = OrderedDict()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        # (url, user) -> the last key that came from a class or Secret. Delete falls
        # back to it when the Secret named on a PV has been removed since.
        self._keys: OrderedDict[tuple[str, str], str] = OrderedDict()

    def _default_client(self, target: HeketiTarget) -> HeketiClient:
        return HeketiClient(
            target.url,
            user=target.user or None,
            key=target.key or None,
            timeout=self._timeout,
            operation_timeout=self._operation_timeout,
            retry=self._retry,
            on_response=self._on_response,
        )

    def client(self, target: HeketiTarget) -> HeketiClient:
        evicted: list[HeketiClient] = []
        with self._lock:
            found = self._clients.get(target)
            if found is None:
                found = self._factory(target)
                self._clients[target] = found
                while len(self._clients) > MAX_TARGETS:
                    evicted.append(self._clients.popitem(last=False)[1])
            self._clients.move_to_end(target)
            if target.key:
                self._keys[(target.url, target.user)] = target.key
                self._keys.move_to_end((target.url, target.user))
                while len(self._keys) > MAX_TARGETS:
                    self._keys.popitem(last=False)
        for old in evicted:  # a worker still using one gets a fresh pool next time
            old.close()
        return found

    def remembered_key(self, url: str, user: str) -> str | None:
        """A key this process already used for that server and issuer, if any."""
        with self._lock:
            return self._keys.get((normalise_url(url), user))

    def _semaphore(self, url: str) -> threading.BoundedSemaphore:
        url = normalise_url(url)
        with self._lock:
            semaphore = self._slots.get(url)
            if semaphore is None:
                semaphore = threading.BoundedSemaphore(self.concurrency)
                self._slots[url] = semaphore
        return semaphore

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Hold one of the server's operation slots for the duration of the block."""
        with self._semaphore(url):
            yield

    @contextmanager
    def early_slot(self, url: str) -> Iterator[Callable[[], None]]:
        """A slot the block may give back early by calling what it yields (once the
        operation ended, before its result is read: the next operation need not wait
        for that read); given back at the end of the block otherwise."""
        semaphore = self._semaphore(url)
        semaphore.acquire()
        lock = threading.Lock()
        held = [True]

        def release() -> None:
            with lock:
                if held[0]:
                    held[0] = False
                    semaphore.release()

        try:
            yield release
        finally:
            release()

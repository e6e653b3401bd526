"""A de-duplicating work queue with per-key exponential backoff, and its workers.

Why not ``queue.Queue``: the controller enqueues *keys*, not work items, and the
same key arrives many times (every watch event, every resync).  A key is in the
queue at most once; a key queued while a worker holds it is handed out again
only after that worker calls ``done`` — so one key is never processed by two
workers at once, and no change is lost.

Backoff per key: ``base * factor ** (failures - 1)``, capped at ``cap``.  Defaults
0.5 s, x2, 300 s: 0.5, 1, 2, 4 ... reaching the cap after ten failures, so a
claim that fails for hours is retried every five minutes, not hammered.
``forget`` resets the count after a success.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import structlog

K = TypeVar("K", bound=Hashable)

log = structlog.get_logger(__name__)


class WorkQueue(Generic[K]):
    def __init__(
        self,
        *,
        base_delay: float = 0.5,
        factor: float = 2.0,
        max_delay: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_delay = base_delay
        self.factor = factor
        self.max_delay = max_delay
        self._clock = clock
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()  # queued, or to be re-queued when done
        self._processing: set[K] = set()
        self._delayed: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._failures: dict[K, int] = {}
        self._shutting_down = False
        self.retries_total = 0

    # -- producers --------------------------------------------------------

    def add(self, key: K) -> None:
        with self._cond:
            if self._shutting_down or key in self._dirty:
                return
            self._dirty.add(key)
            if key not in self._processing:
                self._queue.append(key)
                self._cond.notify()

    def add_after(self, key: K, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutting_down:
                return
            heapq.heappush(self._delayed, (self._clock() + delay, next(self._seq), key))
            self._cond.notify()

    def backoff_delay(self, failures: int) -> float:
        """The wait after the ``failures``-th consecutive failure (1-based)."""
        if failures <= 0:
            return 0.0
        exponent = min(failures - 1, 64)  # large exponents overflow floats
        return float(min(self.max_delay, self.base_delay * self.factor**exponent))

    def add_rate_limited(self, key: K) -> float:
        """Re-queue after this key's next backoff step; returns the delay chosen."""
        with self._cond:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            self.retries_total += 1
        delay = self.backoff_delay(failures)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        with self._cond:
            self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    # -- consumers --------------------------------------------------------

    def get(self, timeout: float | None = None) -> K | None:
        """The next key, or None once shut down (or when ``timeout`` passes)."""
        deadline = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                if self._shutting_down:
                    return None
                self._promote_due()
                if self._queue:
                    key = self._queue.popleft()
                    self._processing.add(key)
                    self._dirty.discard(key)
                    return key
                wait = None
                if self._delayed:
                    wait = max(0.0, self._delayed[0][0] - self._clock())
                if deadline is not None:
                    left = deadline - self._clock()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: K) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty and not self._shutting_down:
                self._queue.append(key)
                self._cond.notify()
            self._cond.notify_all()  # wake wait_idle()

    def _promote_due(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            if key not in self._dirty:
                self._dirty.add(key)
                if key not in self._processing:
                    self._queue.append(key)

    # -- lifecycle --------------------------------------------------------

    def shutdown(self) -> None:
        """Stop handing out keys; keys being processed may still call ``done``."""
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no key is being processed; False if the deadline passed first."""
        deadline = self._clock() + timeout
        with self._cond:
            while self._processing:
                left = deadline - self._clock()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def __len__(self) -> int:
        """Keys ready to be handed out now (the queue depth metric)."""
        with self._cond:
            return len(self._queue)


def start_workers(
    queue: WorkQueue[K], handler: Callable[[K], None], *, count: int, name: str = "worker"
) -> list[threading.Thread]:
    """Run ``handler`` for each key on ``count`` daemon threads.

    A handler that raises is logged and its key retried with backoff; the thread
    carries on, because one bad object must never stop the others being served.
    """

    def loop() -> None:
        while True:
            key = queue.get()
            if key is None:
                return
            try:
                handler(key)
            except Exception:
                delay = queue.add_rate_limited(key)
                log.exception("worker.handler_failed", item=str(key), retry_in=delay)
            finally:
                queue.done(key)

    threads = [threading.Thread(target=loop, name=f"{name}-{i}", daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads

"""Heketi's asynchronous-operation machinery: the in-flight limit, the `/queue`
entries that clients poll, and the timers that run each background step.

A finished entry is handed out once and then forgotten, as Heketi does; a client that
loses the answer to its poll can never learn the outcome from the queue again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class QueueEntry:
    done: bool = False
    location: str | None = None  # success with a resource: 303 to this path
    error: str | None = None  # failure: 500 with this text


class Operations:
    """Thread-safe on its own lock; never calls out while holding it."""

    def __init__(self, max_inflight: int) -> None:
        self.max_inflight = max_inflight
        self._lock = threading.Lock()
        self._in_flight = 0
        self._entries: dict[str, QueueEntry] = {}
        self._timers: dict[str, tuple[threading.Timer, Callable[[], None]]] = {}

    # -- the in-flight limit --------------------------------------------------------

    def acquire(self) -> bool:
        """Take an in-flight slot; False means the caller answers 429."""
        with self._lock:
            if self._in_flight >= self.max_inflight:
                return False
            self._in_flight += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight

    # -- queue entries ------------------------------------------------------------------

    def open(self, op_id: str) -> None:
        with self._lock:
            self._entries[op_id] = QueueEntry()

    def complete(
        self,
        op_id: str,
        *,
        location: str | None = None,
        error: str | None = None,
        lost: bool = False,
    ) -> None:
        with self._lock:
            if lost:
                self._entries.pop(op_id, None)
                return
            entry = self._entries.get(op_id)
            if entry is not None:
                entry.done, entry.location, entry.error = True, location, error

    def poll(self, op_id: str) -> QueueEntry | None:
        """The entry (None if unknown); a finished one is removed by this very read."""
        with self._lock:
            entry = self._entries.get(op_id)
            if entry is not None and entry.done:
                del self._entries[op_id]
            return entry

    # -- background steps -----------------------------------------------------------------

    def schedule(self, op_id: str, delay: float, step: Callable[[], None]) -> None:
        """Run `step` once after `delay` seconds (on a timer thread, no busy wait)."""
        timer = threading.Timer(delay, self._run, args=(op_id,))
        timer.daemon = True
        with self._lock:
            self._timers[op_id] = (timer, step)
        timer.start()

    def _run(self, op_id: str) -> None:
        with self._lock:
            item = self._timers.pop(op_id, None)
        if item is not None:
            item[1]()

    def run_pending_now(self) -> int:
        """Finish every scheduled step immediately; returns how many ran.

        Lets tests observe the pending state under a long latency and then move on
        deterministically, without sleeping.
        """
        with self._lock:
            items = list(self._timers.items())
            self._timers.clear()
        for _, (timer, step) in items:
            timer.cancel()
            step()
        return len(items)

    def cancel_all(self) -> None:
        with self._lock:
            items = list(self._timers.values())
            self._timers.clear()
        for timer, _ in items:
            timer.cancel()

    def stats(self) -> dict[str, int]:
        """The `GET /operations` body.

        In Heketi `total` counts the operations recorded in its database, which are
        exactly the ones not yet finished; `stale` and `failed` count operations left
        behind by a crash or a failed rollback, which the simulator never produces.
        """
        with self._lock:
            return {
                "total": self._in_flight,
                "in_flight": self._in_flight,
                "stale": 0,
                "failed": 0,
                "new": 0,
            }

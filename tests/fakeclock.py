"""Fake monotonic time for tests of code that waits: the controller's work queue and
leader election. A test of "retries after 2 s" or "steps down after 10 s" then takes
no real time and does not depend on the machine's speed.

* ``FakeClock``: time passes only when the test (or a request's latency) advances it,
  or when the one thread using it waits: a wait moves it forward by the whole
  timeout. Enough for one elector, and for code driven step by step by the test.
* ``SimClock``: for several threads at once. A wait blocks until fake time reaches
  its end; the test moves time with ``run_until``, which jumps to the earliest
  wake-up once every participant is waiting (a discrete-event simulation), so the
  threads interleave as they would in real time, only without the waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["FakeClock", "SimClock"]

SETTLE = 15.0
"""Real seconds ``SimClock.run_until`` waits for threads to settle before it fails."""


class FakeClock:
    """Monotonic seconds that pass only when someone advances them or waits."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += max(0.0, seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """``Event.wait`` in fake time: the whole timeout passes unless already set."""
        if not event.is_set():
            self.advance(seconds)
        return event.is_set()


class SimClock:
    """Fake time shared by several threads; see the module docstring."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self._cond = threading.Condition()
        self._sleepers: dict[int, float] = {}  # thread ident -> fake wake-up time

    def __call__(self) -> float:
        with self._cond:
            return self.now

    def advance(self, seconds: float) -> None:
        """Time spent by a participant while it works (a slow request)."""
        with self._cond:
            self.now += max(0.0, seconds)
            self._cond.notify_all()

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """``Event.wait`` in fake time: returns when ``event`` is set or time is up."""
        with self._cond:
            wake = self.now + max(0.0, seconds)
            me = threading.get_ident()
            self._sleepers[me] = wake
            self._cond.notify_all()
            try:
                while not event.is_set() and self.now < wake:
                    self._cond.wait(0.01)  # ``event`` is set elsewhere, without notifying
            finally:
                del self._sleepers[me]
                self._cond.notify_all()
        return event.is_set()

    def _settled(self, participants: int) -> bool:
        sleeping = self._sleepers.values()
        return len(self._sleepers) >= participants and all(w > self.now for w in sleeping)

    def run_until(
        self, predicate: Callable[[], bool], *, participants: Callable[[], int], limit: float
    ) -> bool:
        """Move time forward until ``predicate()`` holds (checked whenever every one of
        ``participants()`` threads waits); False once fake time would pass ``limit``."""
        deadline = time.monotonic() + SETTLE
        with self._cond:
            while True:
                while not self._settled(participants()):
                    if time.monotonic() > deadline:
                        raise AssertionError(f"threads never settled at fake time {self.now}")
                    self._cond.wait(0.01)
                if predicate():
                    return True
                if not self._sleepers:
                    return False
                wake = min(self._sleepers.values())
                if wake > limit:
                    return False
                self.now = wake
                self._cond.notify_all()

    def run_for(self, seconds: float, *, participants: Callable[[], int]) -> None:
        """Let ``seconds`` of fake time pass (every wake-up in between happens)."""
        end = self() + seconds
        self.run_until(lambda: False, participants=participants, limit=end)
        with self._cond:
            self.now = max(self.now, end)
            self._cond.notify_all()

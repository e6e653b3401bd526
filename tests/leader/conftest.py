"""Electors on a simulated clock against one in-memory Lease API (``fakes``).

Several electors run as threads, as replicas would; time is a ``SimClock`` that the
test moves with ``Electors.run_until``/``run_for``, so lease durations are the real
ones (15 s) and an expiry takes no real time. Callbacks record when (fake seconds)
they ran.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from provisioner.k8s.kubeapi import KubeAPI
from provisioner.k8s.leader import LeaderElector
from tests.fakeclock import SimClock

from .fakes import LEASE, NAMESPACE, FakeLeaseServer

WAIT = 15.0
"""Upper bound (real seconds) for every wait; only reached when a test is about to fail."""

HORIZON = 600.0
"""Fake seconds a ``run_until`` may take before it gives up."""

_ids = itertools.count(1)


class Waiter:
    """A condition variable around some state; ``until`` waits (real time) for a predicate."""

    def __init__(self) -> None:
        self.cond = threading.Condition()

    def until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)


class Callbacks:
    """Records ``started``/``stopped`` calls of one elector, with their fake time."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.timeline: list[tuple[str, float]] = []

    def started(self) -> None:
        self._note("started")

    def stopped(self) -> None:
        self._note("stopped")

    def _note(self, what: str) -> None:
        moment = self.clock()
        with self._lock:
            self.timeline.append((what, moment))

    @property
    def calls(self) -> list[str]:
        with self._lock:
            return [what for what, _ in self.timeline]

    def at(self, what: str) -> list[float]:
        with self._lock:
            return [moment for name, moment in self.timeline if name == what]


class Electors:
    """Builds electors (each with its own ``KubeAPI``, as separate processes have)
    sharing one Lease server and one simulated clock."""

    def __init__(self) -> None:
        self.clock = SimClock()
        self.server = FakeLeaseServer(clock=self.clock, advance=self.clock.advance)
        self.made: list[LeaderElector] = []

    def api(self) -> KubeAPI:
        return KubeAPI(self.server, request_timeout=30.0)  # type: ignore[arg-type]

    def make(
        self, identity: str | None = None, *, start: bool = True, **kwargs: Any
    ) -> tuple[LeaderElector, Callbacks]:
        callbacks = Callbacks(self.clock)
        elector = LeaderElector(
            self.api(),
            namespace=NAMESPACE,
            name=LEASE,
            identity=identity or f"replica-{next(_ids)}",
            on_started_leading=callbacks.started,
            on_stopped_leading=callbacks.stopped,
            clock=self.clock,
            wait=self.clock.wait,
            **kwargs,
        )
        self.made.append(elector)
        if start:
            elector.start()
        return elector, callbacks

    def running(self) -> int:
        return sum(e.running() for e in self.made)

    def run_until(self, predicate: Callable[[], bool], within: float = HORIZON) -> bool:
        """Let fake time pass until ``predicate()`` holds (False after ``within`` s)."""
        return self.clock.run_until(
            predicate, participants=self.running, limit=self.clock() + within
        )

    def run_for(self, seconds: float) -> None:
        self.clock.run_for(seconds, participants=self.running)

    def lease(self) -> dict[str, Any]:
        found = self.server.leases.get(LEASE)
        assert found is not None, "the lease was never written"
        return found

    def writes(self) -> list[dict[str, Any]]:
        """The spec of every stored version of the lease, in order."""
        return [
            r.body["spec"]
            for r in self.server.lease_requests()
            if r.method in ("POST", "PUT") and r.status in (200, 201) and r.body is not None
        ]

    def renewals_by(self, identity: str) -> int:
        return sum(1 for spec in self.writes() if spec.get("holderIdentity") == identity)

    def stop_all(self) -> None:
        for elector in self.made:
            elector.stop(WAIT)


@pytest.fixture
def electors() -> Iterator[Electors]:
    made = Electors()
    try:
        yield made
    finally:
        made.stop_all()

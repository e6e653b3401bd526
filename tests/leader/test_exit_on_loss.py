"""Losing the Lease ends the process at once and writes nothing more to the Lease;
a clean shutdown (SIGTERM) still hands the Lease back.

This goes through ``app.run`` with a fake controller and a fake Lease API, the
elector on a simulated clock (the default 15 s lease), with ``exit_hard`` recording
the exit instead of ending pytest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, cast

import pytest
import structlog

from provisioner import app
from provisioner.config import Settings
from provisioner.k8s.kubeapi import KubeAPI
from provisioner.k8s.leader import LeaderElector
from provisioner.observability import Metrics
from provisioner.sandbox.waiting import wait_for
from tests.fakeclock import SimClock

from .conftest import WAIT, Waiter
from .fakes import FakeLeaseServer


class FakeController:
    """What ``app.run`` uses of a Controller; the Heketi side is not needed here."""

    def __init__(self, kube: KubeAPI) -> None:
        self.kube = kube
        self.metrics = Metrics()
        self.started = threading.Event()
        self.stopped_with: list[float] = []

    def start(self) -> None:
        self.started.set()

    def stop(self, grace: float) -> bool:
        self.stopped_with.append(grace)
        return True

    def ready(self) -> bool:
        return self.started.is_set()

    def problems(self) -> list[str]:
        return []


class Exits(Waiter):
    """Stands in for ``os._exit``, which would end pytest."""

    def __init__(self) -> None:
        super().__init__()
        self.codes: list[int] = []

    def __call__(self, code: int) -> None:
        with self.cond:
            self.codes.append(code)
            self.cond.notify_all()


class Run:
    """``app.run`` on a thread, with a fake controller and a stop event for SIGTERM."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.clock = SimClock()
        self.server = FakeLeaseServer(clock=self.clock, advance=self.clock.advance)
        self.controller = FakeController(KubeAPI(self.server, request_timeout=5.0))  # type: ignore[arg-type]
        self.sigterm = threading.Event()
        self.exits = Exits()
        self.result: list[int] = []
        self.electors: list[LeaderElector] = []

        def elector_on_the_clock(*args: Any, **kwargs: Any) -> LeaderElector:
            made = LeaderElector(*args, clock=self.clock, wait=self.clock.wait, **kwargs)
            self.electors.append(made)
            return made

        monkeypatch.delenv("POD_NAMESPACE", raising=False)
        monkeypatch.setattr(app, "build_controller", lambda _settings: self.controller)
        monkeypatch.setattr(app, "stop_on_signals", lambda: self.sigterm)
        monkeypatch.setattr(app, "LeaderElector", elector_on_the_clock)
        settings = Settings(metrics_address="")
        exit_hard = cast("Callable[[int], NoReturn]", self.exits)
        self.thread = threading.Thread(
            target=lambda: self.result.append(app.run(settings, exit_hard=exit_hard)),
            name="cli-run",
            daemon=True,
        )

    def start(self) -> None:
        self.thread.start()
        wait_for(lambda: self.electors and self.electors[0].running(), WAIT, "the elector")
        assert self.run_until(self.controller.started.is_set), "never elected"

    def run_until(self, predicate: Callable[[], bool]) -> bool:
        """Let simulated time pass (at most a few lease durations) until ``predicate``."""
        return self.clock.run_until(
            predicate,
            participants=lambda: sum(e.running() for e in self.electors),
            limit=self.clock() + 60.0,
        )

    def finish(self) -> int:
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "run() did not return"
        (status,) = self.result
        return status


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Iterator[Run]:
    made = Run(monkeypatch)
    yield made
    made.sigterm.set()
    made.thread.join(WAIT)


def test_lost_lease_exits_at_once_and_never_releases(run: Run) -> None:
    run.start()
    with structlog.testing.capture_logs() as logs:
        run.server.fail = lambda r: 500 if r.method == "PUT" else None  # the API server fails
        assert run.run_until(lambda: bool(run.exits.codes)), "exit_hard never called"
        status = run.finish()

    assert run.exits.codes == [1]
    assert [e for e in logs if e["event"] == "leader.lost"] == [
        {"event": "leader.lost", "log_level": "error", "lease": "default/gluster.org-heketi",
         "action": "exit"}
    ]  # fmt: skip
    requests = run.server.lease_requests()
    assert not any(r.clears_holder() for r in requests), "the lost lease was released"
    # The process would be gone at the exit; what still ran here (run() was left to
    # finish, as exit_hard returned) did not hand work a grace period either.
    assert run.controller.stopped_with == [0.0]
    assert status == 1
    assert run.server.leases["gluster.org-heketi"]["spec"]["holderIdentity"] != ""


def test_sigterm_still_releases_the_lease(run: Run) -> None:
    run.start()
    run.sigterm.set()
    status = run.finish()
    assert status == 0
    assert run.exits.codes == []
    releases = [r for r in run.server.lease_requests() if r.clears_holder()]
    assert [r.status for r in releases] == [200]
    assert run.server.leases["gluster.org-heketi"]["spec"]["holderIdentity"] == ""
    assert run.controller.stopped_with == [Settings().shutdown_grace]

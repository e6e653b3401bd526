"""Renewing under trouble: conflicts are re-read, failures past the deadline step down.

All in fake time (lease 15 s, deadline 10 s, retry 2 s).
"""

from __future__ import annotations

from typing import Any

from tests.fakeclock import FakeClock

from .conftest import WAIT, Electors
from .fakes import LEASE, FakeLeaseServer, Request, fake_elector


def _label(lease: dict[str, Any]) -> None:
    lease["metadata"]["labels"] = {"x": "y"}


def test_foreign_write_conflicts_are_reread_and_leadership_kept(electors: Electors) -> None:
    a, calls = electors.make("replica-a")
    assert electors.run_until(lambda: a.is_leader())
    # Someone (kubectl label, say) changes the lease: A's cached resourceVersion is stale.
    electors.server.write_behind(LEASE, _label)
    seen = electors.renewals_by("replica-a")
    electors.run_for(11.0)
    assert electors.renewals_by("replica-a") >= seen + 5
    assert a.is_leader()
    assert calls.calls == ["started"]
    assert electors.lease()["metadata"]["labels"] == {"x": "y"}  # kept, not overwritten
    assert any(r.status == 409 for r in electors.server.lease_requests())


def test_injected_409_on_renew_is_reread(electors: Electors) -> None:
    a, calls = electors.make("replica-a")
    assert electors.run_until(lambda: a.is_leader())
    conflicts: list[Request] = []

    def twice(request: Request) -> int | None:
        if request.method == "PUT" and len(conflicts) < 2:
            conflicts.append(request)
            return 409
        return None

    electors.server.fail = twice
    seen = electors.renewals_by("replica-a")
    electors.run_for(11.0)
    assert len(conflicts) == 2
    assert electors.renewals_by("replica-a") >= seen + 5
    assert calls.calls == ["started"]


def test_racing_candidates_for_an_expired_lease_one_wins(electors: Electors) -> None:
    made = [electors.make(f"replica-{n}") for n in range(4)]
    electors.run_for(60.0)
    leaders = [e for e, _ in made if e.is_leader()]
    assert len(leaders) == 1
    assert sum(calls.calls.count("started") for _, calls in made) == 1
    assert {spec["holderIdentity"] for spec in electors.writes()} == {leaders[0].identity}


def test_leader_replaced_by_another_holder_steps_down(electors: Electors) -> None:
    a, calls = electors.make("replica-a")
    assert electors.run_until(lambda: a.is_leader())

    def forced(lease: dict[str, Any]) -> None:  # an operator: kubectl edit
        lease["spec"].update(holderIdentity="replica-z", leaseDurationSeconds=3600)

    electors.server.write_behind(LEASE, forced)
    assert electors.run_until(lambda: "stopped" in calls.calls, within=30.0)
    assert not a.is_leader()
    assert electors.lease()["spec"]["holderIdentity"] == "replica-z"


def test_api_errors_while_renewing_end_leadership() -> None:
    # Writes fail from t=5 to t=30.
    clock = FakeClock()
    server = FakeLeaseServer(clock=clock, advance=clock.advance)
    server.fail = lambda r: 500 if r.method == "PUT" and 5 <= r.sent < 30 else None
    a, timeline = fake_elector(server, clock, stop_at=("started", 2))
    a.start()
    assert timeline.finish(WAIT), timeline.events
    # Renewed at 2 and 4, not at 6, 8, ...: leadership ends at 4 + 10. Back to
    # candidate, it leads again once writes work (the lease is still its own).
    assert timeline.events[:4] == [("started", 0.0), ("lost", 14.0), ("stopped", 14.0),
                                   ("started", 30.0)]  # fmt: skip


def test_hanging_api_server_steps_down_without_waiting_for_an_answer() -> None:
    # From t=3 every answer takes a minute: the step-down can only come from the
    # elector's own deadline (each request is given the time left before it).
    clock = FakeClock()
    server = FakeLeaseServer(clock=clock, advance=clock.advance)
    server.latency = lambda r: 60.0 if r.sent >= 3 else 0.0
    a, timeline = fake_elector(server, clock)
    a.start()
    assert timeline.finish(WAIT), timeline.events
    # Renewed at 2; the renewal sent at 4 times out when the deadline (2 + 10) comes.
    assert timeline.events == [("started", 0.0), ("lost", 12.0), ("stopped", 12.0)]
    assert not a.is_leader()

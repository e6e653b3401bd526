"""Renewing under trouble: conflicts are re-read, failures past the deadline step down."""

from __future__ import annotations

from provisioner.sandbox.kube import KubeSandbox

from .conftest import LEASE, NAMESPACE, WAIT, Electors, LeaseWrites, lease
from .fakes import FakeClock, FakeLeaseServer, fake_elector


def test_foreign_write_conflicts_are_reread_and_leadership_kept(
    sandbox: KubeSandbox, electors: Electors, writes: LeaseWrites
) -> None:
    a, a_calls = electors.make("replica-a")
    assert a_calls.until(lambda: a.is_leader())
    # Someone (kubectl label, say) changes the lease: A's cached resourceVersion is stale.
    electors.api().patch("leases", LEASE, {"metadata": {"labels": {"x": "y"}}}, NAMESPACE)
    seen = writes.renewals_by("replica-a")
    assert writes.until(lambda: writes.renewals_by("replica-a") >= seen + 5)
    assert a.is_leader()
    assert a_calls.calls == ["started"]
    assert lease(sandbox)["metadata"]["labels"] == {"x": "y"}  # kept, not overwritten


def test_injected_409_on_renew_is_reread(
    sandbox: KubeSandbox, electors: Electors, writes: LeaseWrites
) -> None:
    a, a_calls = electors.make("replica-a")
    assert a_calls.until(lambda: a.is_leader())
    sandbox.faults.fail_next_writes("leases", count=2, status=409, message="stale")
    seen = writes.renewals_by("replica-a")
    assert writes.until(lambda: writes.renewals_by("replica-a") >= seen + 5)
    assert a_calls.calls == ["started"]


def test_racing_candidates_for_an_expired_lease_one_wins(
    sandbox: KubeSandbox, electors: Electors, writes: LeaseWrites
) -> None:
    electors_made = [electors.make(f"replica-{n}") for n in range(4)]
    assert writes.until(lambda: writes.count() >= 20)
    leaders = [e for e, _ in electors_made if e.is_leader()]
    assert len(leaders) == 1
    started = sum(calls.count("started") for _, calls in electors_made)
    assert started == 1
    assert {v["holderIdentity"] for v in writes.versions} == {leaders[0].identity}


def test_api_errors_while_renewing_end_leadership() -> None:
    # In fake time (lease 15, deadline 10, retry 2): writes fail from t=5 to t=30.
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


def test_hanging_api_server_steps_down_without_waiting_for_an_answer(
    sandbox: KubeSandbox, electors: Electors
) -> None:
    a, a_calls = electors.make("replica-a")
    assert a_calls.until(lambda: a.is_leader())
    # Every answer now takes longer than the test waits: the step-down can only come
    # from the elector's own deadline, not from a request returning.
    sandbox.faults.latency = 60.0
    try:
        assert a_calls.until(lambda: "stopped" in a_calls.calls)
        assert not a.is_leader()
    finally:
        sandbox.faults.latency = 0.0


def test_leader_replaced_by_another_holder_steps_down(
    sandbox: KubeSandbox, electors: Electors
) -> None:
    a, a_calls = electors.make("replica-a")
    assert a_calls.until(lambda: a.is_leader())
    # An operator forces the lease to another holder (kubectl edit).
    electors.api().patch(
        "leases",
        LEASE,
        {"spec": {"holderIdentity": "replica-z", "leaseDurationSeconds": 3600}},
        NAMESPACE,
    )
    assert a_calls.until(lambda: "stopped" in a_calls.calls)
    assert not a.is_leader()
    assert lease(sandbox)["spec"]["holderIdentity"] == "replica-z"

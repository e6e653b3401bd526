"""Which step-downs count as losing the Lease: ``on_lost_leading`` runs when
leadership ended without ``stop()`` (deadline passed, another holder), never on
``stop()``, so a caller can exit on a loss and still release on a clean shutdown.
All in fake time."""

from __future__ import annotations

from tests.fakeclock import FakeClock

from .conftest import WAIT
from .fakes import FakeLeaseServer, Request, fake_elector


def test_failing_renewals_call_on_lost_before_on_stopped() -> None:
    clock = FakeClock()
    server = FakeLeaseServer(clock=clock, advance=clock.advance)
    server.fail = lambda r: 500 if r.method == "PUT" else None  # creating works, renewing not
    elector, timeline = fake_elector(server, clock)
    elector.start()
    assert timeline.finish(WAIT), timeline.events
    assert [name for name, _ in timeline.events] == ["started", "lost", "stopped"]


def test_another_holder_counts_as_lost() -> None:
    clock = FakeClock()
    server = FakeLeaseServer(clock=clock, advance=clock.advance)

    def taken_over(request: Request) -> int | None:
        if request.method == "PUT":  # an operator moved the lease meanwhile
            server.leases[request.body["metadata"]["name"]]["spec"]["holderIdentity"] = "z"  # type: ignore[index]
            return 409
        return None

    server.fail = taken_over
    elector, timeline = fake_elector(server, clock)
    elector.start()
    assert timeline.finish(WAIT), timeline.events
    assert [name for name, _ in timeline.events] == ["started", "lost", "stopped"]


def test_stop_is_not_a_loss() -> None:
    clock = FakeClock()
    server = FakeLeaseServer(clock=clock, advance=clock.advance)
    elector, timeline = fake_elector(server, clock)

    def stop_at_the_fifth_renewal(request: Request) -> int | None:
        if sum(r.method == "PUT" for r in server.requests) == 5:
            elector.stop()  # from the elector's own thread: returns at once
        return None

    server.fail = stop_at_the_fifth_renewal
    elector.start()
    assert timeline.finish(WAIT), timeline.events
    assert [name for name, _ in timeline.events] == ["started", "stopped"]
    assert elector.release() is True  # and the lease can still be handed back

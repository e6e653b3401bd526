"""A write counts from when it was sent: a slow answer never extends leadership.

Other replicas start counting a lease's expiry when they see the new record, which
may be as early as the moment the request left this process. Counting from the
answer would let this process believe it leads up to one request's latency longer
than the others believe: two leaders. All timings here are in fake seconds.
"""

from __future__ import annotations

import pytest

from tests.fakeclock import FakeClock

from .conftest import WAIT
from .fakes import FakeLeaseServer, Request, fake_elector

DEADLINE = 10.0  # renew_deadline; lease_duration 15, retry_period 2


def _nth_write(request: Request, server: FakeLeaseServer) -> int:
    """1 for the first write (create or replace) this server saw, 2 for the next..."""
    writes = [r for r in server.requests if r.method in ("POST", "PUT")]
    return next((n for n, r in enumerate(writes, 1) if r is request), 0)


def _scenario(slow_write: int, latency: float, *, honour_timeouts: bool = True) -> tuple[
    FakeClock, FakeLeaseServer
]:  # fmt: skip
    """Write number ``slow_write`` takes ``latency``; every write after it fails (500)."""
    clock = FakeClock()
    server = FakeLeaseServer(clock=clock, advance=clock.advance, honour_timeouts=honour_timeouts)
    server.latency = lambda r: latency if _nth_write(r, server) == slow_write else 0.0
    server.fail = lambda r: 500 if _nth_write(r, server) > slow_write else None
    return clock, server


def _write_sent(server: FakeLeaseServer, number: int) -> float:
    writes = [r for r in server.requests if r.method in ("POST", "PUT")]
    return writes[number - 1].sent


@pytest.mark.parametrize(
    ("slow_write", "latency", "what"),
    [
        (2, 7.0, "a renewal sent at 2, answered at 9"),
        (1, 1.5, "the acquisition sent at 0, answered at 1.5"),
    ],
)
def test_leader_steps_down_by_send_time_plus_deadline(
    slow_write: int, latency: float, what: str
) -> None:
    clock, server = _scenario(slow_write, latency)
    elector, timeline = fake_elector(server, clock, renew_deadline=DEADLINE)
    elector.start()
    assert timeline.finish(WAIT), timeline.events

    sent = _write_sent(server, slow_write)
    answered = sent + latency
    assert server.requests[-1].status == 500  # the later renewals did fail
    (stopped,) = timeline.at("stopped")
    # Counting from the answer would have kept it leading until answered + DEADLINE.
    assert stopped == pytest.approx(sent + DEADLINE), (what, answered + DEADLINE)
    assert timeline.at("lost") == [stopped]
    assert not elector.is_leader()


def test_is_leader_ends_at_send_time_plus_deadline() -> None:
    clock, server = _scenario(2, 7.0)
    seen: list[tuple[float, bool]] = []
    failing = server.fail

    def fail_and_look(request: Request) -> int | None:
        seen.append((clock(), elector.is_leader()))
        return failing(request)

    server.fail = fail_and_look
    elector, timeline = fake_elector(server, clock, renew_deadline=DEADLINE)
    elector.start()
    assert timeline.finish(WAIT), timeline.events
    sent = _write_sent(server, 2)
    after_answer = [(t, leading) for t, leading in seen if t > sent + 7.0]
    assert after_answer, seen
    assert all(leading == (t < sent + DEADLINE) for t, leading in after_answer), seen


def test_renewal_answered_after_the_deadline_does_not_extend_leadership() -> None:
    # urllib3's timeouts bound each socket read, not the whole answer: it can trickle in.
    clock, server = _scenario(2, 20.0, honour_timeouts=False)
    elector, timeline = fake_elector(server, clock, renew_deadline=DEADLINE)
    elector.start()
    assert timeline.finish(WAIT), timeline.events
    # The elector was blocked in the request until 22; it steps down the moment it
    # returns instead of counting a fresh term from 2 (or from 22).
    assert timeline.at("stopped") == [pytest.approx(22.0)]
    assert len([r for r in server.requests if r.method == "PUT"]) == 1


def test_acquisition_answered_after_the_deadline_does_not_start_leading() -> None:
    clock = FakeClock()
    server = FakeLeaseServer(clock=clock, advance=clock.advance, honour_timeouts=False)
    server.latency = lambda r: 12.0 if _nth_write(r, server) == 1 else 0.0
    server.fail = lambda r: 500 if _nth_write(r, server) > 2 else None
    elector, timeline = fake_elector(server, clock, renew_deadline=DEADLINE)
    elector.start()
    assert timeline.finish(WAIT), timeline.events
    # Created at 0, answered at 12: too late to lead on. The retry at 14 re-reads the
    # lease (its own), renews it at once and leads from then on.
    second = _write_sent(server, 2)
    assert second == pytest.approx(14.0)
    assert timeline.at("started") == [pytest.approx(second)]
    assert timeline.at("stopped") == [pytest.approx(second + DEADLINE)]

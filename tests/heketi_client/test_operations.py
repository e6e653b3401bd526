"""Async operations: 202 → queue polls → 303 / 204 / 500 / 404, followed to the end."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

import pytest
import responses

from heketi_client import HeketiClient, LatencyEstimator, PollPolicy, VolumeCreateRequest
from heketi_client.errors import OperationFailed, OperationTimeout, OutcomeUnknown


def accept(
    heketi: responses.RequestsMock, wire: Any, method: str = "POST", path: str = "/volumes"
) -> None:
    heketi.add(method, wire.BASE + path, status=202, headers={"Location": wire.QUEUE})


def pending(heketi: responses.RequestsMock, wire: Any, times: int) -> None:
    for _ in range(times):
        heketi.get(wire.BASE + wire.QUEUE, status=200, headers={"X-Pending": "true"})


def done_with(heketi: responses.RequestsMock, wire: Any, location: str) -> None:
    heketi.get(wire.BASE + wire.QUEUE, status=303, headers={"Location": location})


def qsh(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_create_waits_through_pending_polls_then_reads_the_volume(
    client: HeketiClient,
    heketi: responses.RequestsMock,
    wire: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    accept(heketi, wire)
    pending(heketi, wire, 3)
    done_with(heketi, wire, f"/volumes/{wire.VOL}")
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", json=wire.volume_json())

    caplog.set_level(logging.DEBUG, logger="heketi_client")
    volume = client.create_volume(VolumeCreateRequest(10, name=f"vol_{wire.VOL}"))

    assert volume.id == wire.VOL
    calls = [(c.request.method, c.request.path_url) for c in heketi.calls]
    assert calls == [("POST", "/volumes")] + [("GET", wire.QUEUE)] * 4 + [
        ("GET", f"/volumes/{wire.VOL}")
    ]
    expected = [qsh(f"{m}&{p}") for m, p in calls]
    assert [wire.claims_of(c.request)["qsh"] for c in heketi.calls] == expected
    (summary,) = [r for r in caplog.records if r.getMessage().startswith("heketi operation")]
    assert summary.name == "heketi_client._operations"
    assert summary.getMessage().startswith("heketi operation volume_create ended: 303 after 4")
    assert summary.__dict__["polls"] == 4 and summary.__dict__["status"] == 303


def test_delete_ends_on_204(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    accept(heketi, wire, "DELETE", f"/volumes/{wire.VOL}")
    pending(heketi, wire, 1)
    heketi.get(wire.BASE + wire.QUEUE, status=204)
    assert client.delete_volume(wire.VOL) is None
    assert wire.claims_of(heketi.calls[0].request)["qsh"] == qsh(f"DELETE&/volumes/{wire.VOL}")
    assert len(heketi.calls) == 3


def test_queue_500_is_operation_failed_with_heketi_text(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    accept(heketi, wire)
    pending(heketi, wire, 2)
    heketi.get(wire.BASE + wire.QUEUE, status=500, body="Unable to create volume: brick failed\n")
    with pytest.raises(OperationFailed) as caught:
        client.create_volume(VolumeCreateRequest(1))
    assert caught.value.message == "Unable to create volume: brick failed"


def test_queue_404_means_the_result_was_lost(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    accept(heketi, wire)
    pending(heketi, wire, 1)
    heketi.get(wire.BASE + wire.QUEUE, status=404, body="Id not found\n")
    with pytest.raises(OutcomeUnknown) as caught:
        client.create_volume(VolumeCreateRequest(1))
    assert not isinstance(caught.value, OperationTimeout)
    assert "Id not found" in str(caught.value)


def test_deadline_gives_operation_timeout_without_real_waiting(
    make_client: Callable[..., HeketiClient],
    heketi: responses.RequestsMock,
    wire: Any,
    fake_time: Any,
) -> None:
    client = make_client(operation_timeout=2.0)
    accept(heketi, wire)
    pending(heketi, wire, 1)  # the last registration repeats: pending forever
    with pytest.raises(OperationTimeout) as caught:
        client.create_volume(VolumeCreateRequest(1))
    assert isinstance(caught.value, OutcomeUnknown)
    assert caught.value.location == wire.QUEUE
    assert sum(fake_time.sleeps) == pytest.approx(2.0)
    assert max(fake_time.sleeps) <= 0.08  # the configured cap


def test_location_joins_onto_a_base_path(
    make_client: Callable[..., HeketiClient], heketi: responses.RequestsMock, wire: Any
) -> None:
    base = "https://gw.example/heketi"
    client = make_client(url=base + "/")
    heketi.add("DELETE", f"{base}/volumes/{wire.VOL}", status=202, headers={"Location": wire.QUEUE})
    heketi.get(base + wire.QUEUE, status=204)
    client.delete_volume(wire.VOL)
    assert [c.request.url for c in heketi.calls] == [
        f"{base}/volumes/{wire.VOL}",
        base + wire.QUEUE,
    ]
    assert wire.claims_of(heketi.calls[1].request)["qsh"] == qsh(f"GET&{wire.QUEUE}")


def test_expand_and_clone_follow_the_303(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    clone = "b" * 32
    accept(heketi, wire, "POST", f"/volumes/{wire.VOL}/expand")
    done_with(heketi, wire, f"/volumes/{wire.VOL}")
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", json=wire.volume_json(size=15))
    assert client.expand_volume(wire.VOL, 5).size == 15
    assert heketi.calls[0].request.body == b'{"expand_size": 5}'

    heketi.add(
        "POST",
        f"{wire.BASE}/volumes/{wire.VOL}/clone",
        status=202,
        headers={"Location": "/queue/" + "e" * 32},
    )
    heketi.get(
        f"{wire.BASE}/queue/{'e' * 32}", status=303, headers={"Location": f"/volumes/{clone}"}
    )
    heketi.get(f"{wire.BASE}/volumes/{clone}", json=wire.volume_json(clone, name="snap1"))
    assert client.clone_volume(wire.VOL, name="snap1").name == "snap1"
    assert heketi.calls[3].request.body == b'{"name": "snap1"}'


def test_failure_to_read_the_result_is_outcome_unknown(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    accept(heketi, wire)
    done_with(heketi, wire, f"/volumes/{wire.VOL}")
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", status=401, body="Administrator access required")
    with pytest.raises(OutcomeUnknown):
        client.create_volume(VolumeCreateRequest(1))


def test_poll_refused_by_a_user_token_is_outcome_unknown(
    make_client: Callable[..., HeketiClient], heketi: responses.RequestsMock, wire: Any
) -> None:
    """Heketi lets the "user" issuer POST /volumes but not poll the queue."""
    client = make_client(user="user")
    accept(heketi, wire)
    heketi.get(wire.BASE + wire.QUEUE, status=401, body="Administrator access required\n")
    with pytest.raises(OutcomeUnknown, match="Administrator access required"):
        client.create_volume(VolumeCreateRequest(1))


def test_missing_location_on_202_is_outcome_unknown(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(wire.BASE + "/volumes", status=202)
    with pytest.raises(OutcomeUnknown):
        client.create_volume(VolumeCreateRequest(1))


def test_schedule_starts_small_grows_and_caps() -> None:
    delays = PollPolicy(first_delay=0.02, factor=2, max_interval=0.1).delays(None)
    assert [next(delays) for _ in range(6)] == pytest.approx([0.02, 0.04, 0.08, 0.1, 0.1, 0.1])


def test_schedule_jumps_to_a_learned_estimate() -> None:
    policy = PollPolicy(
        first_delay=0.02, factor=2, max_interval=1.0, estimate_lead=0.9, fine_step=0.05
    )
    delays = policy.delays(2.0)
    # 1.8, then every 0.1 s through 2.2 (the window 0.9..1.1 of the estimate), then growth.
    expected = [1.8, 0.1, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.0]
    assert [next(delays) for _ in range(9)] == pytest.approx(expected)
    short = policy.delays(0.05)  # fine steps have a floor
    assert [next(short) for _ in range(2)] == pytest.approx([0.045, 0.005])
    tiny = policy.delays(0.01)  # below first_delay: nothing to skip
    assert next(tiny) == pytest.approx(0.02)


def test_schedule_at_the_estimate_keeps_fine_steps_after_it() -> None:
    """With the default lead (1.0) the first poll is at the estimate itself; a pending
    answer there is followed by fine steps, not by the slow growth."""
    delays = PollPolicy(fine_step=0.02).delays(0.2)
    assert [next(delays) for _ in range(3)] == pytest.approx([0.2, 0.005, 0.005])


def test_a_first_poll_that_finds_it_done_only_nudges_the_estimate_down(
    make_client: Callable[..., HeketiClient],
    heketi: responses.RequestsMock,
    wire: Any,
) -> None:
    """Nothing brackets the end when the first poll is already late: the old midpoint
    rule (start .. poll) halved the estimate and sent the next first poll far too
    early, for 2.6 polls per create; now it drops by settle * fine_step only."""
    client = make_client(poll=PollPolicy(fine_step=0.02, settle=0.1))
    client.latency.observe("volume_delete", 1.0)
    accept(heketi, wire, "DELETE", f"/volumes/{wire.VOL}")
    heketi.get(wire.BASE + wire.QUEUE, status=204)
    client.delete_volume(wire.VOL)
    assert len(heketi.calls) == 2  # the delete and one poll
    assert client.latency.estimate("volume_delete") == pytest.approx(1.0 - 0.1 * 0.02)


def test_a_pending_first_poll_pulls_the_estimate_back_to_the_midpoint(
    make_client: Callable[..., HeketiClient],
    heketi: responses.RequestsMock,
    wire: Any,
    fake_time: Any,
) -> None:
    client = make_client(poll=PollPolicy(fine_step=0.02, learning_rate=1.0))
    client.latency.observe("volume_delete", 1.0)
    accept(heketi, wire, "DELETE", f"/volumes/{wire.VOL}")
    pending(heketi, wire, 1)
    heketi.get(wire.BASE + wire.QUEUE, status=204)
    client.delete_volume(wire.VOL)
    assert fake_time.sleeps[:2] == pytest.approx([1.0, 0.02])
    assert client.latency.estimate("volume_delete") == pytest.approx(1.01, abs=0.005)


def test_settle_is_checked() -> None:
    with pytest.raises(ValueError, match="settle"):
        PollPolicy(settle=2.0)


def test_estimator_learns_per_kind() -> None:
    estimator = LatencyEstimator(learning_rate=0.5)
    assert estimator.estimate("volume_create") is None
    estimator.observe("volume_create", 2.0)
    estimator.observe("volume_create", 4.0)
    assert estimator.estimate("volume_create") == pytest.approx(3.0)
    assert estimator.estimate("volume_delete") is None


def test_client_learns_operation_latency_and_polls_less_next_time(
    make_client: Callable[..., HeketiClient],
    heketi: responses.RequestsMock,
    wire: Any,
    fake_time: Any,
) -> None:
    client = make_client(poll=PollPolicy(first_delay=0.01, factor=2.0, max_interval=1.0))
    for _ in range(2):
        accept(heketi, wire, "DELETE", f"/volumes/{wire.VOL}")
        pending(heketi, wire, 6)
        heketi.get(wire.BASE + wire.QUEUE, status=204)
    client.delete_volume(wire.VOL)
    first_run_polls = len(heketi.calls) - 1
    learned = client.latency.estimate("volume_delete")
    assert learned is not None and 0.3 < learned < 1.3
    fake_time.sleeps.clear()
    client.delete_volume(wire.VOL)
    # Second run: one long sleep near the estimate, then small steps.
    assert fake_time.sleeps[0] == pytest.approx(PollPolicy().estimate_lead * learned)
    assert first_run_polls == 7


def test_every_request_gets_a_newly_minted_token(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    ticks = iter(range(10_000, 20_000, 7))
    client._transport.auth._clock = lambda: float(next(ticks))  # type: ignore[union-attr]
    accept(heketi, wire)
    pending(heketi, wire, 2)
    done_with(heketi, wire, f"/volumes/{wire.VOL}")
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", json=wire.volume_json())
    client.create_volume(VolumeCreateRequest(1))
    issued = [wire.claims_of(c.request, verify_exp=False)["iat"] for c in heketi.calls]
    assert len(issued) == 5 and len(set(issued)) == 5


@pytest.mark.parametrize(("status", "headers"), [(429, {}), (502, {}), (503, {"Retry-After": "0"})])
def test_a_failed_poll_is_simply_polled_again(
    status: int,
    headers: dict[str, str],
    client: HeketiClient,
    heketi: responses.RequestsMock,
    wire: Any,
) -> None:
    accept(heketi, wire, "DELETE", f"/volumes/{wire.VOL}")
    heketi.get(wire.BASE + wire.QUEUE, status=status, body="busy", headers=headers)
    heketi.get(wire.BASE + wire.QUEUE, status=204)
    client.delete_volume(wire.VOL)
    assert [c.response.status_code for c in heketi.calls] == [202, status, 204]


def test_estimator_remembers_a_bounded_number_of_kinds() -> None:
    """``kind`` is any caller's string: one per volume would grow the map forever."""
    estimator = LatencyEstimator(max_kinds=4)
    for n in range(1000):
        estimator.observe(f"kind-{n}", 1.0)
    assert len(estimator.kinds()) == 4
    assert estimator.kinds() == ("kind-996", "kind-997", "kind-998", "kind-999")


def test_estimator_forgets_the_least_recently_used_kind() -> None:
    estimator = LatencyEstimator(max_kinds=2)
    estimator.observe("volume_create", 2.0)
    estimator.observe("volume_delete", 1.0)
    assert estimator.estimate("volume_create") == 2.0  # used: now the most recent
    estimator.observe("volume_expand", 3.0)
    assert estimator.kinds() == ("volume_create", "volume_expand")
    assert estimator.estimate("volume_delete") is None
    with pytest.raises(ValueError):
        LatencyEstimator(max_kinds=0)


def test_route_templates_from_locations_stay_few(
    make_client: Callable[..., HeketiClient], heketi: responses.RequestsMock, wire: Any
) -> None:
    """Metric labels come from paths: a Heketi inventing a queue path per operation
    (``/queue/op-1``, ``/queue/op-2``...) would otherwise mint a label per operation."""
    seen: set[str] = set()
    client = make_client(on_response=lambda m, route, s, t: seen.add(route))
    for n in range(20):
        heketi.add(
            "DELETE",
            f"{wire.BASE}/volumes/{wire.VOL}",
            status=202,
            headers={"Location": f"/queue/op-{n}"},
        )
        with pytest.raises(OutcomeUnknown):
            client.delete_volume(wire.VOL)
    assert seen == {"/volumes/{id}"}


def test_on_finished_runs_when_the_operation_ends_before_its_result_is_read(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    """So a caller's operation slot can go to the next create during the read."""
    accept(heketi, wire)
    pending(heketi, wire, 1)
    done_with(heketi, wire, f"/volumes/{wire.VOL}")
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", json=wire.volume_json())
    calls_at_finish: list[int] = []

    volume = client.create_volume(
        VolumeCreateRequest(10), on_finished=lambda: calls_at_finish.append(len(heketi.calls))
    )

    assert volume.id == wire.VOL
    assert calls_at_finish == [3]  # POST, pending poll, 303 poll; the read came after


def test_on_finished_also_runs_when_the_operation_failed(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    accept(heketi, wire)
    heketi.get(wire.BASE + wire.QUEUE, status=500, body="no space")
    finished: list[bool] = []
    with pytest.raises(OperationFailed):
        client.create_volume(VolumeCreateRequest(10), on_finished=lambda: finished.append(True))
    assert finished == [True]

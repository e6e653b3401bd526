"""What is retried, how long we wait, and what is never blindly re-sent."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses
import urllib3.exceptions

from heketi_client import HeketiClient, RetryPolicy, VolumeCreateRequest
from heketi_client.errors import (
    HeketiAPIError,
    HeketiConnectionError,
    HeketiError,
    HeketiTimeout,
    NoSpace,
    OutcomeUnknown,
    Throttled,
)

BUSY = "Server busy. Retry operation later."


def refused() -> requests.ConnectionError:
    """What requests raises when nothing listens: the request was never sent."""
    new = urllib3.exceptions.NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused"
    )  # type: ignore[arg-type]
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/volumes", new))  # type: ignore[arg-type]


def dropped() -> requests.ConnectionError:
    """What requests raises when the server closes the socket after reading the request."""
    return requests.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))
    )


def created(heketi: responses.RequestsMock, wire: Any) -> None:
    heketi.post(wire.BASE + "/volumes", status=202, headers={"Location": wire.QUEUE})
    heketi.get(wire.BASE + wire.QUEUE, status=303, headers={"Location": f"/volumes/{wire.VOL}"})
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", json=wire.volume_json())


def post_calls(heketi: responses.RequestsMock) -> int:
    return sum(1 for c in heketi.calls if c.request.method == "POST")


def test_429_without_retry_after_backs_off_exponentially_with_jitter(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any, fake_time: Any
) -> None:
    for _ in range(3):
        heketi.post(wire.BASE + "/volumes", status=429, body=BUSY)
    created(heketi, wire)
    assert client.create_volume(VolumeCreateRequest(1)).id == wire.VOL
    assert post_calls(heketi) == 4
    waits = fake_time.sleeps[:3]  # then come the poll sleeps
    for n, wait in enumerate(waits):
        base = 0.01 * 2**n
        assert base / 2 <= wait <= base


def test_429_honours_retry_after(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any, fake_time: Any
) -> None:
    heketi.post(wire.BASE + "/volumes", status=429, body=BUSY, headers={"Retry-After": "0.3"})
    created(heketi, wire)
    client.create_volume(VolumeCreateRequest(1))
    assert fake_time.sleeps[0] == 0.3


def test_retry_after_beyond_the_cap_goes_to_the_caller(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(wire.BASE + "/volumes", status=429, body=BUSY, headers={"Retry-After": "120"})
    with pytest.raises(Throttled) as caught:
        client.create_volume(VolumeCreateRequest(1))
    assert caught.value.retry_after == 120.0
    assert post_calls(heketi) == 1


def test_persistent_429_gives_throttled_after_the_attempt_budget(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any, fake_time: Any
) -> None:
    heketi.post(wire.BASE + "/volumes", status=429, body=BUSY)
    with pytest.raises(Throttled, match="Server busy") as caught:
        client.create_volume(VolumeCreateRequest(1))
    assert caught.value.retry_after is None
    assert post_calls(heketi) == 4
    assert len(fake_time.sleeps) == 3


def test_connection_errors_on_get_are_retried(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(wire.BASE + "/volumes", body=dropped())
    heketi.get(wire.BASE + "/volumes", body=refused())
    heketi.get(wire.BASE + "/volumes", json={"volumes": [wire.VOL]})
    assert client.list_volumes() == [wire.VOL]
    assert len(heketi.calls) == 3


def test_connection_errors_on_get_surface_after_the_budget(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(wire.BASE + "/volumes", body=dropped())
    with pytest.raises(HeketiConnectionError) as caught:
        client.list_volumes()
    assert caught.value.request_sent
    assert len(heketi.calls) == 4


def test_dropped_create_is_not_resent(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(wire.BASE + "/volumes", body=dropped())
    with pytest.raises(OutcomeUnknown) as caught:
        client.create_volume(VolumeCreateRequest(1, name="pvc-x"))
    assert isinstance(caught.value.__cause__, requests.ConnectionError)
    assert post_calls(heketi) == 1


def test_refused_create_is_retried_because_nothing_was_sent(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(wire.BASE + "/volumes", body=refused())
    created(heketi, wire)
    assert client.create_volume(VolumeCreateRequest(1)).id == wire.VOL
    assert post_calls(heketi) == 2


def tls_failure(cause: Exception) -> requests.exceptions.SSLError:
    """What requests raises for a TLS error, in the handshake or while reading."""
    wrapped = urllib3.exceptions.SSLError(cause)
    return requests.exceptions.SSLError(
        urllib3.exceptions.MaxRetryError(None, "/volumes", wrapped)  # type: ignore[arg-type]
    )


def test_tls_failure_after_sending_a_create_is_outcome_unknown(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    heketi.post(wire.BASE + "/volumes", body=tls_failure(eof))
    with pytest.raises(OutcomeUnknown):
        client.create_volume(VolumeCreateRequest(1))
    assert post_calls(heketi) == 1


def plain_http_peer() -> ssl.SSLError:
    error = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    error.reason = "WRONG_VERSION_NUMBER"
    return error


@pytest.mark.parametrize(
    "handshake_error",
    [
        lambda: ssl.SSLCertVerificationError(1, "certificate verify failed"),
        plain_http_peer,
    ],
    ids=["certificate refused", "plain HTTP peer"],
)
def test_failed_tls_handshake_on_create_is_retried_because_nothing_was_sent(
    handshake_error: Callable[[], Exception],
    client: HeketiClient,
    heketi: responses.RequestsMock,
    wire: Any,
) -> None:
    heketi.post(wire.BASE + "/volumes", body=tls_failure(handshake_error()))
    created(heketi, wire)
    assert client.create_volume(VolumeCreateRequest(1)).id == wire.VOL
    assert post_calls(heketi) == 2


def test_read_timeout_on_create_is_outcome_unknown(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(wire.BASE + "/volumes", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(OutcomeUnknown):
        client.create_volume(VolumeCreateRequest(1))
    assert post_calls(heketi) == 1


def test_read_timeout_on_get_is_retried_then_heketi_timeout(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(wire.BASE + "/clusters", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(HeketiTimeout):
        client.list_clusters()
    assert len(heketi.calls) == 4


def test_connect_timeout_on_create_is_retried(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(wire.BASE + "/volumes", body=requests.ConnectTimeout("connect timed out"))
    created(heketi, wire)
    client.create_volume(VolumeCreateRequest(1))
    assert post_calls(heketi) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_on_get_are_retried(
    status: int, client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(wire.BASE + "/clusters", status=status, body="oops")
    heketi.get(wire.BASE + "/clusters", json={"clusters": [wire.CLUSTER]})
    assert client.list_clusters() == [wire.CLUSTER]


def test_delete_counts_as_idempotent(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.delete(f"{wire.BASE}/volumes/{wire.VOL}", body=dropped())
    heketi.delete(f"{wire.BASE}/volumes/{wire.VOL}", status=202, headers={"Location": wire.QUEUE})
    heketi.get(wire.BASE + wire.QUEUE, status=204)
    client.delete_volume(wire.VOL)
    assert [c.request.method for c in heketi.calls] == ["DELETE", "DELETE", "GET"]


def test_allocation_failure_on_create_is_final(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(
        wire.BASE + "/volumes", status=500, body="Failed to allocate new volume: No space\n"
    )
    with pytest.raises(NoSpace):
        client.create_volume(VolumeCreateRequest(1))
    assert post_calls(heketi) == 1


# A proxy may answer 502/503/504 after it passed the POST on: never re-send it.
@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_on_create_are_outcome_unknown(
    status: int, client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(wire.BASE + "/volumes", status=status, body="<html><body>Bad Gateway</body></html>")
    with pytest.raises(OutcomeUnknown, match="HTML page") as caught:
        client.create_volume(VolumeCreateRequest(1))
    assert isinstance(caught.value.__cause__, HeketiAPIError)
    assert post_calls(heketi) == 1


def test_maintenance_503_on_create_is_retried(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(wire.BASE + "/volumes", status=503, body="Service disabled for maintenance\n")
    created(heketi, wire)
    client.create_volume(VolumeCreateRequest(1))
    assert post_calls(heketi) == 2


def test_retries_are_logged_with_attempt_counters_and_without_the_key(
    client: HeketiClient,
    heketi: responses.RequestsMock,
    wire: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through the standard ``logging`` module only, so any application can route it."""
    heketi.get(wire.BASE + "/volumes", status=429, body=BUSY)
    heketi.get(wire.BASE + "/volumes", json={"volumes": []})
    caplog.set_level(logging.DEBUG, logger="heketi_client")
    client.list_volumes()
    ours = [r for r in caplog.records if r.name.startswith("heketi_client.")]
    retry_lines = [r for r in ours if r.levelno == logging.WARNING]
    assert len(retry_lines) == 1
    assert retry_lines[0].getMessage().startswith("attempt 1/4 failed: 429: Server busy")
    assert "retrying in" in retry_lines[0].getMessage()
    requests_logged = [r for r in ours if r.getMessage().startswith("heketi request")]
    assert [r.__dict__["status"] for r in requests_logged] == [429, 200]
    assert all(r.__dict__["path"] == "/volumes" for r in requests_logged)
    assert all("duration_ms" in r.__dict__ for r in requests_logged)
    assert wire.KEY not in repr([(r.getMessage(), r.__dict__) for r in ours])


def test_one_attempt_means_no_retry(
    make_client: Callable[..., HeketiClient], heketi: responses.RequestsMock, wire: Any
) -> None:
    client = make_client(retry=RetryPolicy(attempts=1))
    heketi.get(wire.BASE + "/volumes", status=503, body="Service disabled for maintenance")
    with pytest.raises(HeketiAPIError):
        client.list_volumes()
    assert len(heketi.calls) == 1


@pytest.mark.parametrize(
    "kwargs", [{"attempts": 0}, {"factor": 0.5}, {"jitter": 2.0}, {"backoff": -1.0}]
)
def test_retry_policy_rejects_nonsense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_a_request_that_cannot_be_built_is_not_retried(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(wire.BASE + "/volumes", body=requests.exceptions.InvalidHeader("bad header"))
    with pytest.raises(HeketiError, match="cannot send GET /volumes") as caught:
        client.list_volumes()
    assert type(caught.value) is HeketiError
    assert len(heketi.calls) == 1


def test_timeout_message_names_the_read_timeout(
    make_client: Callable[..., HeketiClient], heketi: responses.RequestsMock, wire: Any
) -> None:
    client = make_client(timeout=(3.0, 12.5), retry=RetryPolicy(attempts=1))
    heketi.get(wire.BASE + "/volumes", body=requests.ReadTimeout("read timed out"))
    with pytest.raises(HeketiTimeout, match=r"within 12\.5 s"):
        client.list_volumes()


def test_retries_stop_where_the_next_wait_would_pass_the_request_deadline(
    make_client: Callable[..., HeketiClient],
    heketi: responses.RequestsMock,
    wire: Any,
    fake_time: Any,
) -> None:
    """One deadline for the whole call: waits of 1, 2, 4 s fit in 10 s with what the
    attempts take; the fourth wait (8 s) would end past it, so the 503 goes to the
    caller after four attempts instead of the policy's six."""
    for _ in range(6):
        heketi.get(wire.BASE + "/clusters", status=503, body="Service disabled for maintenance")
    retry = RetryPolicy(attempts=6, backoff=1.0, factor=2.0, max_backoff=60.0, jitter=0.0)
    client = make_client(retry=retry, request_deadline=10.0)
    started = fake_time.now
    with pytest.raises(HeketiAPIError) as caught:
        client.list_clusters()
    assert caught.value.status == 503
    assert len(heketi.calls) == 4
    assert fake_time.sleeps == [1.0, 2.0, 4.0]
    assert fake_time.now - started < 10.0

"""The ``on_response`` hook: every HTTP exchange reported by route template, never by URL.

The provisioner turns these calls into Prometheus metrics, so what matters here is
that the values are few (ids folded into ``{id}``), complete (retries, polls and
connection failures are all reported) and carry nothing secret.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses
import urllib3

from heketi_client import HeketiClient, RetryPolicy, VolumeCreateRequest, route_template
from heketi_client.errors import HeketiConnectionError

Call = tuple[str, str, "int | None", float]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call] = []

    def __call__(self, method: str, route: str, status: int | None, seconds: float) -> None:
        self.calls.append((method, route, status, seconds))

    def routes(self) -> list[tuple[str, str, int | None]]:
        return [(m, r, s) for m, r, s, _ in self.calls]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def observed(make_client: Callable[..., HeketiClient], recorder: Recorder) -> HeketiClient:
    return make_client(on_response=recorder)


def test_create_reports_post_polls_and_read_by_template(
    observed: HeketiClient, heketi: responses.RequestsMock, recorder: Recorder, wire: Any
) -> None:
    heketi.post(wire.BASE + "/volumes", status=202, headers={"Location": wire.QUEUE})
    heketi.get(wire.BASE + wire.QUEUE, status=200, headers={"X-Pending": "true"})
    heketi.get(wire.BASE + wire.QUEUE, status=303, headers={"Location": f"/volumes/{wire.VOL}"})
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", json=wire.volume_json())

    observed.create_volume(VolumeCreateRequest(10))

    assert recorder.routes() == [
        ("POST", "/volumes", 202),
        ("GET", "/queue/{id}", 200),
        ("GET", "/queue/{id}", 303),
        ("GET", "/volumes/{id}", 200),
    ]
    assert all(seconds >= 0 for *_, seconds in recorder.calls)


def test_retries_and_errors_are_each_reported(
    observed: HeketiClient, heketi: responses.RequestsMock, recorder: Recorder, wire: Any
) -> None:
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", status=500, body="db busy")
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", json=wire.volume_json())

    observed.get_volume(wire.VOL)

    assert recorder.routes() == [("GET", "/volumes/{id}", 500), ("GET", "/volumes/{id}", 200)]


def test_no_answer_is_reported_with_status_none(
    make_client: Callable[..., HeketiClient],
    heketi: responses.RequestsMock,
    recorder: Recorder,
    wire: Any,
) -> None:
    refused = requests.ConnectionError(
        urllib3.exceptions.MaxRetryError(
            None,  # type: ignore[arg-type]
            "/clusters",
            urllib3.exceptions.NewConnectionError(None, "refused"),  # type: ignore[arg-type]
        )
    )
    heketi.get(wire.BASE + "/clusters", body=refused)
    client = make_client(on_response=recorder, retry=RetryPolicy(attempts=1))

    with pytest.raises(HeketiConnectionError):
        client.list_clusters()

    assert recorder.routes() == [("GET", "/clusters", None)]


def test_a_failing_observer_never_fails_the_request(
    make_client: Callable[..., HeketiClient], heketi: responses.RequestsMock, wire: Any
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("metrics backend down")

    heketi.get(wire.BASE + "/clusters", json={"clusters": []})
    assert make_client(on_response=broken).list_clusters() == []


def test_observer_values_carry_no_key_host_or_credentials(
    make_client: Callable[..., HeketiClient],
    heketi: responses.RequestsMock,
    recorder: Recorder,
    wire: Any,
) -> None:
    secret_url = "http://admin:hunter2@heketi.test:8080"
    heketi.get(secret_url + "/clusters", json={"clusters": []})
    make_client(url=secret_url, on_response=recorder).list_clusters()

    (call,) = recorder.calls
    text = repr(call)
    for secret in (wire.KEY, "hunter2", "heketi.test", "admin"):
        assert secret not in text


@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/volumes", "/volumes"),
        ("/volumes/" + "a" * 32 + "/expand", "/volumes/{id}/expand"),
        ("/volumes/" + "0" * 32 + "/clone", "/volumes/{id}/clone"),
        ("/queue/" + "f" * 32, "/queue/{id}"),
        ("http://u:p@heketi:8080/queue/" + "b" * 32 + "?x=1", "/queue/{id}"),
        ("/nodes/" + "1" * 32 + "/state", "/nodes/{id}/state"),
        ("/hello", "/hello"),
        ("/devices/dead", "/devices/dead"),  # short hex words stay: no id is that short
    ],
)
def test_route_template(path: str, template: str) -> None:
    assert route_template(path) == template

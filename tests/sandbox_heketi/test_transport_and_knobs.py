"""HTTP/1.1 keep-alive framing, per-operation latency, limits changed at run time."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from provisioner.sandbox.heketi import HeketiSimulator

SLOW = 60.0


def test_one_connection_carries_every_kind_of_answer(
    sim: HeketiSimulator, token: Callable[..., str]
) -> None:
    """202, 303 (with body), 204 (no Content-Length), 200 JSON and text errors in a row
    on one socket: each answer must be framed exactly, or the next one is garbled."""
    parts = urlsplit(sim.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)

    def call(method: str, path: str, body: str | None = None) -> http.client.HTTPResponse:
        headers = {"Authorization": "bearer " + token(method, path)}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response

    created = call("POST", "/volumes", '{"size": 1}')
    assert created.status == 202
    done = call("GET", created.getheader("Location") or "")
    assert done.status == 303
    volume_path = done.getheader("Location") or ""
    assert call("GET", volume_path).status == 200
    assert call("GET", "/volumes/zz").status == 404
    deleted = call("DELETE", volume_path)
    assert deleted.status == 202
    gone = call("GET", deleted.getheader("Location") or "")
    assert gone.status == 204 and gone.getheader("Content-Length") is None
    assert call("GET", "/volumes").status == 200
    assert call("POST", "/volumes", "{}").status == 400
    assert conn.sock is not None  # never closed by the server in between
    conn.close()


def test_json_and_text_content_types(heketi: Any) -> None:
    listing = heketi.get("/volumes")
    assert listing.headers["Content-Type"] == "application/json; charset=UTF-8"
    assert listing.text == '{"volumes":[]}\n'
    assert int(listing.headers["Content-Length"]) == len(listing.content)
    assert "Server" not in listing.headers


def test_latency_per_operation(make_sim: Callable[..., HeketiSimulator], client_for: Any) -> None:
    sim = make_sim(latency={"volume_delete": SLOW})
    heketi = client_for(sim)
    volume = heketi.create({"size": 1})  # create: no latency, done at the first poll
    queue = heketi.delete(f"/volumes/{volume['id']}").headers["Location"]
    assert heketi.get(queue).headers.get("X-Pending") == "true"
    sim.set_latency(0.0)
    assert sim.complete_pending() == 1
    assert heketi.get(queue).status_code == 204


def test_max_inflight_can_change(make_sim: Callable[..., HeketiSimulator], client_for: Any) -> None:
    sim = make_sim(latency=SLOW, max_inflight=1)
    heketi = client_for(sim)
    assert heketi.post("/volumes", {"size": 1}).status_code == 202
    assert heketi.post("/volumes", {"size": 1}).status_code == 429
    sim.set_max_inflight(2)
    assert heketi.post("/volumes", {"size": 1}).status_code == 202
    assert sim.operations()["in_flight"] == 2
    assert sim.complete_pending() == 2


def test_hang_after_effect_client_times_out_but_volume_exists(
    heketi: Any, sim: HeketiSimulator
) -> None:
    sim.faults.hang_next("volume_create", seconds=SLOW, after_effect=True)
    with pytest.raises(requests.Timeout):
        heketi.call("POST", "/volumes", {"size": 1, "name": "slowpoke"}, timeout=(5, 0.3))
    heketi.until(lambda: [v["name"] for v in sim.volumes()] == ["slowpoke"])
    sim.down()  # releases the held request at once
    sim.up()


def test_stop_with_operations_in_flight(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    sim = make_sim(latency=SLOW)
    heketi = client_for(sim)
    heketi.post("/volumes", {"size": 1})
    sim.stop()
    assert sim.complete_pending() == 0  # the pending step was cancelled, not run later
    with pytest.raises(requests.ConnectionError):
        requests.get(sim.url + "/hello", timeout=5)


def test_records_without_auth(make_sim: Callable[..., HeketiSimulator]) -> None:
    sim = make_sim(auth=False, admin_key=None)
    assert requests.post(sim.url + "/volumes", json={"size": 1}, timeout=5).status_code == 202
    (record,) = sim.requests
    assert (record.method, record.route, record.status, record.user) == (
        "POST",
        "/volumes",
        202,
        None,
    )


def test_iat_at_the_leeway_edge_passes(sim: HeketiSimulator, token: Callable[..., str]) -> None:
    now = int(time.time())
    edge = token("GET", "/volumes", iat=now + 119, exp=now + 600)
    response = requests.get(
        sim.url + "/volumes", headers={"Authorization": f"bearer {edge}"}, timeout=5
    )
    assert response.status_code == 200

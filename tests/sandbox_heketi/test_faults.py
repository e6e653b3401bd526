"""Fault injection: synchronous errors, failed background steps, dropped connections,
lost results, hangs, and the server going down and up."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests

from provisioner.sandbox.heketi import HeketiSimulator


def test_fail_next_answers_at_once_and_has_no_effect(heketi: Any, sim: HeketiSimulator) -> None:
    sim.faults.fail_next("volume_create", count=2, status=503, text="maintenance")
    for _ in range(2):
        response = heketi.post("/volumes", {"size": 1})
        assert (response.status_code, response.text) == (503, "maintenance\n")
    assert sim.volumes() == []
    assert heketi.post("/volumes", {"size": 1}).status_code == 202
    assert sim.request_counts()["POST /volumes 503"] == 2


def test_fail_next_on_a_route(heketi: Any, sim: HeketiSimulator) -> None:
    volume = heketi.create({"size": 1})
    sim.faults.fail_next("GET /volumes/{id}", status=500, text="boom")
    assert heketi.get(f"/volumes/{volume['id']}").text == "boom\n"
    assert heketi.get(f"/volumes/{volume['id']}").status_code == 200


def test_faults_are_not_consumed_by_unauthenticated_requests(sim: HeketiSimulator) -> None:
    sim.faults.fail_next("volume_create")
    assert requests.post(sim.url + "/volumes", json={"size": 1}, timeout=5).status_code == 401
    assert sim.faults.armed() == {"fail POST /volumes": 1}


def test_async_failure_rolls_back(heketi: Any, sim: HeketiSimulator) -> None:
    free = [sim.device(d)["storage"]["free"] for n in sim.node_ids(sim.cluster_ids()[0])
            for d in sim.device_ids(n)]  # fmt: skip
    sim.faults.fail_async_next("volume_create", text="gluster said no")
    accepted = heketi.post("/volumes", {"size": 3, "name": "doomed"})
    assert accepted.status_code == 202
    failed = heketi.wait(accepted.headers["Location"])
    assert (failed.status_code, failed.text) == (500, "gluster said no\n")
    assert heketi.get(accepted.headers["Location"]).status_code == 404
    assert sim.volumes() == []
    assert [sim.device(d)["storage"]["free"] for n in sim.node_ids(sim.cluster_ids()[0])
            for d in sim.device_ids(n)] == free  # fmt: skip
    # The name is free again.
    assert heketi.create({"size": 1, "name": "doomed"})["name"] == "doomed"


def test_async_delete_failure_keeps_the_volume(heketi: Any, sim: HeketiSimulator) -> None:
    volume = heketi.create({"size": 1})
    sim.faults.fail_async_next("volume_delete", text="busy brick")
    accepted = heketi.delete(f"/volumes/{volume['id']}")
    assert heketi.wait(accepted.headers["Location"]).text == "busy brick\n"
    assert heketi.get(f"/volumes/{volume['id']}").status_code == 200


def test_drop_before_effect(heketi: Any, sim: HeketiSimulator) -> None:
    sim.faults.drop_connection_next("volume_create")
    with pytest.raises(requests.ConnectionError):
        heketi.post("/volumes", {"size": 1, "name": "lost"})
    assert sim.volumes() == []
    assert sim.request_counts()["POST /volumes dropped"] == 1
    assert heketi.post("/volumes", {"size": 1, "name": "lost"}).status_code == 202


def test_drop_after_effect_creates_the_volume(heketi: Any, sim: HeketiSimulator) -> None:
    """The request reached Heketi, only the answer was lost: the volume exists."""
    sim.faults.drop_connection_next("volume_create", after_effect=True)
    with pytest.raises(requests.ConnectionError):
        heketi.post("/volumes", {"size": 1, "name": "ghost"})
    assert [v["name"] for v in sim.volumes()] == ["ghost"]
    retry = heketi.post("/volumes", {"size": 1, "name": "ghost"})
    assert retry.text == "Failed to allocate new volume: Volume name 'ghost' already in use\n"


def test_lose_result(heketi: Any, sim: HeketiSimulator) -> None:
    sim.faults.lose_result_next("volume_create")
    accepted = heketi.post("/volumes", {"size": 1, "name": "orphan"})
    assert accepted.status_code == 202
    assert heketi.get(accepted.headers["Location"]).status_code == 404
    assert [v["name"] for v in sim.volumes()] == ["orphan"]


def test_hang_holds_the_request(make_sim: Callable[..., HeketiSimulator], client_for: Any) -> None:
    sim = make_sim()
    sim.faults.hang_next("GET /clusters", seconds=30)
    heketi = client_for(sim)
    with pytest.raises(requests.Timeout):
        heketi.call("GET", "/clusters", timeout=0.3)
    # The hang is cut short when the server goes down, so teardown never waits 30 s.
    sim.stop()


def test_hang_then_answer(heketi: Any, sim: HeketiSimulator) -> None:
    sim.faults.hang_next("volume_create", seconds=0.2, after_effect=True)
    response = heketi.post("/volumes", {"size": 1})
    assert response.status_code == 202


def test_down_refuses_connections_and_up_restores(heketi: Any, sim: HeketiSimulator) -> None:
    volume = heketi.create({"size": 1})
    port = sim.port
    sim.down()
    with pytest.raises(requests.ConnectionError):
        heketi.get("/volumes")  # the pooled keep-alive connection was cut too
    with pytest.raises(requests.ConnectionError):
        requests.get(sim.url + "/hello", timeout=5)
    sim.up()
    assert sim.port == port
    assert heketi.get(f"/volumes/{volume['id']}").status_code == 200


def test_down_releases_hung_requests(heketi: Any, sim: HeketiSimulator) -> None:
    sim.faults.hang_next("volume_create", seconds=60)
    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            outcome.append(heketi.post("/volumes", {"size": 1}).status_code)
        except requests.RequestException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    heketi.until(lambda: sim.faults.armed() == {})  # the request has taken its hang
    sim.down()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert isinstance(outcome[0], requests.ConnectionError)
    assert sim.volumes() == []
    sim.up()


def test_bad_fault_arguments(sim: HeketiSimulator) -> None:
    with pytest.raises(ValueError):
        sim.faults.fail_next("create_everything")
    with pytest.raises(ValueError):
        sim.faults.fail_async_next("GET /volumes")
    with pytest.raises(ValueError):
        sim.faults.fail_next("volume_create", count=0)
    sim.faults.fail_next("volume_create")
    sim.faults.clear()
    assert sim.faults.armed() == {}

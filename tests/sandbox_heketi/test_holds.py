"""``faults.hold_next``: stop a Heketi request at an exact point, then decide its fate."""

from __future__ import annotations

import threading
from typing import Any

import requests

from provisioner.sandbox.heketi import HeketiSimulator


def _post_in_thread(heketi: Any, body: dict[str, Any]) -> tuple[threading.Thread, list[Any]]:
    outcome: list[Any] = []

    def call() -> None:
        try:
            outcome.append(heketi.post("/volumes", body).status_code)
        except requests.RequestException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread, outcome


def test_hold_before_effect(heketi: Any, sim: HeketiSimulator) -> None:
    hold = sim.faults.hold_next("volume_create")
    assert sim.faults.armed() == {"hold POST /volumes": 1}
    thread, outcome = _post_in_thread(heketi, {"size": 1, "name": "held"})
    assert hold.wait_reached(10)
    assert sim.volumes() == []
    hold.release()
    thread.join(10)
    assert outcome == [202]


def test_hold_released_without_proceeding_drops(heketi: Any, sim: HeketiSimulator) -> None:
    hold = sim.faults.hold_next("volume_create")
    thread, outcome = _post_in_thread(heketi, {"size": 1, "name": "never"})
    assert hold.wait_reached(10)
    hold.release(proceed=False)
    thread.join(10)
    assert isinstance(outcome[0], requests.ConnectionError)
    assert sim.request_counts()["POST /volumes dropped"] == 1
    assert sim.volumes() == []


def test_hold_after_effect_has_accepted_the_request(heketi: Any, sim: HeketiSimulator) -> None:
    hold = sim.faults.hold_next("volume_create", after_effect=True)
    thread, outcome = _post_in_thread(heketi, {"size": 1, "name": "accepted"})
    assert hold.wait_reached(10)
    heketi.until(lambda: [v["name"] for v in sim.volumes()] == ["accepted"])
    assert thread.is_alive()
    hold.release()
    thread.join(10)
    assert outcome == [202]


def test_down_ends_a_hold_and_clear_releases(heketi: Any, sim: HeketiSimulator) -> None:
    hold = sim.faults.hold_next("volume_create")
    thread, outcome = _post_in_thread(heketi, {"size": 1})
    assert hold.wait_reached(10)
    sim.down()
    thread.join(10)
    assert isinstance(outcome[0], requests.ConnectionError)
    sim.up()
    armed = sim.faults.hold_next("volume_create")
    sim.faults.clear()
    assert sim.faults.armed() == {}
    assert heketi.post("/volumes", {"size": 1}).status_code == 202
    assert not armed.reached.is_set()

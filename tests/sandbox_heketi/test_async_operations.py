"""The 202 → queue → 303/204/500 protocol, hidden in-flight volumes, and throttling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from provisioner.sandbox.heketi import HeketiSimulator

SLOW = 60.0  # latency long enough never to elapse inside a test; complete_pending() ends it


def test_create_poll_follow(heketi: Any, sim: HeketiSimulator) -> None:
    accepted = heketi.post("/volumes", {"size": 2, "name": "data"})
    assert accepted.status_code == 202
    assert accepted.content == b""
    location = accepted.headers["Location"]
    assert location.startswith("/queue/") and len(location) == len("/queue/") + 32
    done = heketi.get(location)
    assert done.status_code == 303
    volume_path = done.headers["Location"]
    assert volume_path.startswith("/volumes/")
    # The finished entry was handed out once; it is gone now.
    gone = heketi.get(location)
    assert (gone.status_code, gone.text) == (404, "Id not found\n")
    info = heketi.get(volume_path).json()
    assert info["name"] == "data" and info["size"] == 2
    assert sim.request_counts()["GET /queue/{id} 303"] == 1
    assert sim.request_counts()["POST /volumes 202"] == 1


def test_pending_volume_is_hidden(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    sim = make_sim(latency=SLOW)
    heketi = client_for(sim)
    accepted = heketi.post("/volumes", {"size": 1, "name": "slow"})
    queue = accepted.headers["Location"]
    pending = heketi.get(queue)
    assert pending.status_code == 200
    assert pending.headers["X-Pending"] == "true"
    assert pending.content == b""
    assert heketi.get("/volumes").json() == {"volumes": []}
    assert sim.volumes() == []
    assert sim.operations()["in_flight"] == 1
    assert sim.complete_pending() == 1
    done = heketi.get(queue)
    assert done.status_code == 303
    volume_id = done.headers["Location"].rsplit("/", 1)[1]
    assert heketi.get("/volumes").json() == {"volumes": [volume_id]}
    assert [v["name"] for v in sim.volumes()] == ["slow"]
    assert sim.operations()["in_flight"] == 0


def test_pending_volume_info_is_404(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    sim = make_sim(latency={"volume_create": SLOW})
    heketi = client_for(sim)
    heketi.post("/volumes", {"size": 1})
    cluster = heketi.get(f"/clusters/{sim.cluster_ids()[0]}").json()
    # Heketi's cluster info does list the pending volume's id...
    (volume_id,) = cluster["volumes"]
    # ...but the volume itself answers 404 until the create has finished.
    assert heketi.get(f"/volumes/{volume_id}").status_code == 404
    deleting = heketi.delete(f"/volumes/{volume_id}")
    assert deleting.status_code == 500
    assert deleting.text == (
        "Failed to set up volume delete: The target exists, contains other items, or is in use.\n"
    )


def test_delete_returns_204_and_frees_space(heketi: Any, sim: HeketiSimulator) -> None:
    device_ids = [d for n in sim.node_ids(sim.cluster_ids()[0]) for d in sim.device_ids(n)]
    before = {d: sim.device(d)["storage"]["free"] for d in device_ids}
    volume = heketi.create({"size": 10, "durability": {"type": "replicate"}})
    assert len(volume["bricks"]) == 2
    middle = {d: sim.device(d)["storage"]["free"] for d in device_ids}
    assert sum(before.values()) - sum(middle.values()) == 2 * 10539008
    accepted = heketi.delete(f"/volumes/{volume['id']}")
    assert accepted.status_code == 202 and accepted.content == b""
    done = heketi.get(accepted.headers["Location"])
    assert done.status_code == 204 and done.content == b""
    assert {d: sim.device(d)["storage"]["free"] for d in device_ids} == before
    assert heketi.get(f"/volumes/{volume['id']}").status_code == 404
    assert heketi.delete(f"/volumes/{volume['id']}").text == "Id not found\n"


def test_delete_in_flight_hides_volume(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    sim = make_sim(latency={"volume_delete": SLOW})
    heketi = client_for(sim)
    volume = heketi.create({"size": 1})
    queue = heketi.delete(f"/volumes/{volume['id']}").headers["Location"]
    assert heketi.get(queue).headers.get("X-Pending") == "true"
    assert heketi.get("/volumes").json() == {"volumes": []}
    sim.complete_pending()
    assert heketi.get(queue).status_code == 204


def test_expand_adds_bricks_and_size(heketi: Any, sim: HeketiSimulator) -> None:
    volume = heketi.create(
        {"size": 5, "durability": {"type": "replicate", "replicate": {"replica": 3}}}
    )
    accepted = heketi.post(f"/volumes/{volume['id']}/expand", {"expand_size": 3})
    assert accepted.status_code == 202
    done = heketi.get(accepted.headers["Location"])
    assert done.status_code == 303 and done.headers["Location"] == f"/volumes/{volume['id']}"
    grown = heketi.get(f"/volumes/{volume['id']}").json()
    assert grown["size"] == 8
    assert len(grown["bricks"]) == 6
    assert {b["size"] for b in grown["bricks"][3:]} == {3 * 1024 * 1024}


def test_expand_errors(heketi: Any) -> None:
    unknown = heketi.post(f"/volumes/{'0' * 32}/expand", {"expand_size": 1})
    assert (unknown.status_code, unknown.text) == (404, "Id not found\n")
    volume = heketi.create({"size": 1})
    path = f"/volumes/{volume['id']}/expand"
    assert (
        heketi.post(path, {"expand_size": 0}).text
        == "validation failed: expand_size: cannot be blank.\n"
    )
    assert heketi.post(path, {"expand_size": -2}).text == (
        "validation failed: expand_size: must be no less than 1.\n"
    )
    assert heketi.post(path, {"expand_size": "3"}).status_code == 422
    too_big = heketi.post(path, {"expand_size": 100000})
    # The volume's own bricks count towards the 32: an expand runs into that limit
    # before "No space" (as the real Heketi v10.3.0 answers; test_differential_heketi).
    assert (too_big.status_code, too_big.text) == (
        500,
        "Failed to allocate volume expansion: Maximum number of bricks reached.\n",
    )


def test_clone_uses_no_space_and_default_name(heketi: Any, sim: HeketiSimulator) -> None:
    volume = heketi.create(
        {"size": 4, "durability": {"type": "replicate", "replicate": {"replica": 3}}}
    )
    free = [sim.device(b["device"])["storage"]["free"] for b in volume["bricks"]]
    accepted = heketi.post(f"/volumes/{volume['id']}/clone", {})
    assert accepted.status_code == 202
    done = heketi.get(accepted.headers["Location"])
    assert done.status_code == 303
    clone = heketi.get(done.headers["Location"]).json()
    assert clone["id"] != volume["id"]
    assert clone["name"] == f"vol_{clone['id']}"
    assert clone["size"] == 4 and clone["cluster"] == volume["cluster"]
    assert [b["device"] for b in clone["bricks"]] == [b["device"] for b in volume["bricks"]]
    assert not {b["id"] for b in clone["bricks"]} & {b["id"] for b in volume["bricks"]}
    assert [sim.device(b["device"])["storage"]["free"] for b in volume["bricks"]] == free
    # Clone names are never checked for uniqueness.
    named = heketi.post(f"/volumes/{volume['id']}/clone", {"name": volume["name"]})
    assert heketi.wait(named.headers["Location"]).status_code == 303
    assert heketi.post(f"/volumes/{volume['id']}/clone", {"name": "bad name"}).text == (
        "validation failed: name: must be in a valid format.\n"
    )


def test_throttling_past_max_inflight(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    sim = make_sim(latency=SLOW, max_inflight=2)
    heketi = client_for(sim)
    first = heketi.post("/volumes", {"size": 1})
    second = heketi.post("/volumes", {"size": 1})
    assert first.status_code == second.status_code == 202
    busy = heketi.post("/volumes", {"size": 1})
    assert (busy.status_code, busy.text) == (429, "Server busy. Retry operation later.\n")
    assert "Retry-After" not in busy.headers
    # Deletes are counted too.
    volume_id = heketi.get(f"/clusters/{sim.cluster_ids()[0]}").json()["volumes"][0]
    assert heketi.delete(f"/volumes/{volume_id}").status_code == 429
    assert heketi.get("/operations").json() == {
        "total": 2,
        "in_flight": 2,
        "stale": 0,
        "failed": 0,
        "new": 0,
    }
    sim.complete_pending()
    # Slots are free as soon as the background steps end, before anyone polls.
    assert heketi.post("/volumes", {"size": 1}).status_code == 202
    assert heketi.get(first.headers["Location"]).status_code == 303


def test_throttled_request_has_no_effect(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    sim = make_sim(latency=SLOW, max_inflight=1)
    heketi = client_for(sim)
    heketi.post("/volumes", {"size": 1, "name": "one"})
    assert heketi.post("/volumes", {"size": 1, "name": "two"}).status_code == 429
    sim.complete_pending()
    assert [v["name"] for v in sim.volumes()] == ["one"]


def test_failed_allocation_releases_the_slot(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    sim = make_sim(max_inflight=1)
    heketi = client_for(sim)
    for _ in range(3):
        assert heketi.post("/volumes", {"size": 100000}).status_code == 500
    assert heketi.get("/operations").json()["in_flight"] == 0
    assert heketi.post("/volumes", {"size": 1}).status_code == 202


def test_retry_after_option(make_sim: Callable[..., HeketiSimulator], client_for: Any) -> None:
    sim = make_sim(latency=SLOW, max_inflight=1, retry_after=7)
    heketi = client_for(sim)
    heketi.post("/volumes", {"size": 1})
    busy = heketi.post("/volumes", {"size": 1})
    assert busy.status_code == 429 and busy.headers["Retry-After"] == "7"


def test_unknown_queue_id(heketi: Any) -> None:
    response = heketi.get(f"/queue/{'ab' * 16}")
    assert (response.status_code, response.text) == (404, "Id not found\n")


def test_redirect_location_is_a_path_for_python_client(heketi: Any, sim: HeketiSimulator) -> None:
    """Heketi's Python client GETs host + Location itself, so Location must be a path."""
    accepted = heketi.post("/volumes", {"size": 1})
    done = heketi.get(accepted.headers["Location"])
    assert not done.headers["Location"].startswith("http")
    follow = requests.get(sim.url + done.headers["Location"], timeout=5)
    assert follow.status_code == 401  # still needs its own token: the path changed

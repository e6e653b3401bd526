"""Brick placement and space accounting across topologies."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from provisioner.sandbox.heketi import HeketiSimulator
from provisioner.sandbox.heketi.allocator import brick_space_kib
from provisioner.sandbox.heketi.state import Database

GIB = 1024 * 1024
REPLICA3 = {"type": "replicate", "replicate": {"replica": 3}}


def devices_of(sim: HeketiSimulator) -> list[str]:
    return [d for c in sim.cluster_ids() for n in sim.node_ids(c) for d in sim.device_ids(n)]


def total_free(sim: HeketiSimulator) -> int:
    return sum(sim.device(d)["storage"]["free"] for d in devices_of(sim))


@pytest.mark.parametrize(
    ("brick_kib", "factor", "used"),
    [(10 * GIB, 1.0, 10539008), (10 * GIB, 1.5, 15810560), (GIB, 1.0, GIB + 8192)],
)
def test_brick_space(brick_kib: int, factor: float, used: int) -> None:
    assert brick_space_kib(brick_kib, factor) == used


def test_metadata_is_capped_at_16_gib() -> None:
    four_tib = 4 * 1024 * GIB
    assert brick_space_kib(four_tib) == four_tib + 16 * GIB


def test_ten_gib_volume_takes_10539008_per_brick(heketi: Any, sim: HeketiSimulator) -> None:
    before = {d: sim.device(d)["storage"] for d in devices_of(sim)}
    volume = heketi.create({"size": 10, "durability": {"type": "none"}})
    (brick,) = volume["bricks"]
    assert brick["size"] == 10 * GIB
    after = sim.device(brick["device"])["storage"]
    assert before[brick["device"]]["free"] - after["free"] == 10539008
    assert after["used"] == 10539008
    assert after["total"] == 500 * GIB
    assert after["free"] + after["used"] == after["total"]


def test_snapshot_factor_takes_more_space(heketi: Any, sim: HeketiSimulator) -> None:
    before = total_free(sim)
    volume = heketi.create({"size": 10, "snapshot": {"enable": True, "factor": 1.5}})
    assert volume["snapshot"] == {"enable": True, "factor": 1.5}
    assert before - total_free(sim) == 15810560


def test_replica3_on_three_nodes(make_sim: Callable[..., HeketiSimulator], client_for: Any) -> None:
    sim = make_sim(nodes=3, devices_per_node=1)
    volume = client_for(sim).create({"size": 5, "durability": REPLICA3})
    assert len({b["node"] for b in volume["bricks"]}) == 3
    assert len(volume["bricks"]) == 3


def test_replica3_on_two_nodes_is_no_space(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    sim = make_sim(nodes=2, devices_per_node=4)
    response = client_for(sim).post("/volumes", {"size": 5, "durability": REPLICA3})
    assert (response.status_code, response.text) == (
        500,
        "Failed to allocate new volume: No space\n",
    )


def test_disperse_4_2_needs_six_nodes(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    body = {"size": 8, "durability": {"type": "disperse", "disperse": {"data": 4, "redundancy": 2}}}
    five = make_sim(nodes=5, devices_per_node=2)
    assert (
        client_for(five).post("/volumes", body).text == "Failed to allocate new volume: No space\n"
    )
    six = make_sim(nodes=6, devices_per_node=1)
    volume = client_for(six).create(body)
    assert len(volume["bricks"]) == 6
    assert len({b["node"] for b in volume["bricks"]}) == 6
    assert {b["size"] for b in volume["bricks"]} == {2 * GIB}
    assert volume["durability"] == {
        "type": "disperse",
        "replicate": {},
        "disperse": {"data": 4, "redundancy": 2},
    }


def test_default_replica_is_two_but_not_reported(heketi: Any) -> None:
    volume = heketi.create({"size": 2, "durability": {"type": "replicate"}})
    assert volume["durability"] == {"type": "replicate", "replicate": {}, "disperse": {}}
    assert len(volume["bricks"]) == 2


def test_large_volume_is_split_into_brick_sets(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    sim = make_sim(nodes=3, devices_per_node=2, device_size_gb=100)
    volume = client_for(sim).create({"size": 150, "durability": REPLICA3})
    # 150 GiB bricks don't fit 100 GiB devices; 2 sets of 75 GiB do, one per device.
    assert len(volume["bricks"]) == 6
    assert {b["size"] for b in volume["bricks"]} == {75 * GIB}
    assert len({b["device"] for b in volume["bricks"]}) == 6
    for start in range(0, 6, 3):
        assert len({b["node"] for b in volume["bricks"][start : start + 3]}) == 3


def test_offline_devices_and_nodes_are_skipped(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    sim = make_sim(nodes=4, devices_per_node=1)
    nodes = sim.node_ids(sim.cluster_ids()[0])
    sim.set_node_state(nodes[0], "offline")
    sim.set_device_state(sim.device_ids(nodes[1])[0], "failed")
    heketi = client_for(sim)
    assert heketi.post("/volumes", {"size": 1, "durability": REPLICA3}).status_code == 500
    volume = heketi.create({"size": 1, "durability": {"type": "replicate"}})
    assert {b["node"] for b in volume["bricks"]} == set(nodes[2:])


def test_device_free_must_be_strictly_greater(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    sim = make_sim(nodes=1, devices_per_node=0)
    node = sim.node_ids(sim.cluster_ids()[0])[0]
    exact = brick_space_kib(GIB)
    device = sim.add_device(node, size_gb=2)
    heketi = client_for(sim)
    heketi.create({"size": 1})  # leaves 2 GiB - exact free
    free = sim.device(device)["storage"]["free"]
    assert free == 2 * GIB - exact
    assert free < exact  # so a second 1 GiB brick cannot fit...
    assert heketi.post("/volumes", {"size": 1}).status_code == 500


def test_fifty_parallel_creates(make_sim: Callable[..., HeketiSimulator], client_for: Any) -> None:
    sim = make_sim(nodes=4, devices_per_node=3, max_inflight=64)
    before = total_free(sim)

    def create(i: int) -> dict[str, Any]:
        client = client_for(sim)
        return client.create({"size": 1 + i % 3, "name": f"par{i}", "durability": REPLICA3})

    with ThreadPoolExecutor(max_workers=16) as pool:
        volumes = list(pool.map(create, range(50)))
    bricks = [b for v in volumes for b in v["bricks"]]
    assert len(bricks) == 150
    assert len({b["id"] for b in bricks}) == 150
    assert len({b["path"] for b in bricks}) == 150
    for volume in volumes:
        assert len({b["node"] for b in volume["bricks"]}) == 3
    expected = sum(brick_space_kib(b["size"]) for b in bricks)
    assert before - total_free(sim) == expected
    assert len({v["name"] for v in sim.volumes()}) == 50


def test_brick_paths_and_ids(heketi: Any) -> None:
    volume = heketi.create({"size": 1, "durability": REPLICA3})
    for brick in volume["bricks"]:
        assert brick["path"] == (
            f"/var/lib/heketi/mounts/vg_{brick['device']}/brick_{brick['id']}/brick"
        )
        assert brick["volume"] == volume["id"]
        for key in ("id", "device", "node", "volume"):
            assert len(brick[key]) == 32 and int(brick[key], 16) >= 0
            assert brick[key] == brick[key].lower()


def test_placement_is_seedable() -> None:
    def run(seed: int) -> list[str]:
        db = Database(random.Random(seed))
        return [db.new_id() for _ in range(3)]

    assert run(1) == run(1)
    assert run(1) != run(2)

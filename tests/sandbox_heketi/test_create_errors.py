"""POST /volumes refusals: each check of heketi-api.md, in order, with its exact text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from provisioner.sandbox.heketi import HeketiSimulator

UNKNOWN = "f" * 32
TOO_SMALL = "Requested volume size ({} GB) is smaller than the minimum supported volume size ({})"


def answer(heketi: Any, body: Any) -> tuple[int, str]:
    response = heketi.post("/volumes", body)
    if response.status_code >= 400:
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert response.text.endswith("\n")
    return response.status_code, response.text.rstrip("\n")


@pytest.mark.parametrize(
    "raw_body",
    [b"", b"not json", b"[1, 2]", b'{"size": 1.5}', b'{"size": "1"}', b'{"size": true}',
     b'{"size": 1, "name": 5}', b'{"size": 1, "clusters": "abc"}', b'{"size": 1, "block": "yes"}',
     b'{"size": 1, "durability": {"replicate": {"replica": "3"}}}',
     b'{"size": 1, "snapshot": {"enable": 1}}', b'{"size": 1, "gid": 99999999999999999999}'],
)  # fmt: skip
def test_unparsable_bodies_are_422(heketi: Any, raw_body: bytes, token: Any) -> None:
    response = heketi.session.post(
        heketi.sim.url + "/volumes",
        data=raw_body,
        headers={"Authorization": "bearer " + token("POST", "/volumes")},
        timeout=10,
    )
    assert (response.status_code, response.text) == (422, "request unable to be parsed\n")


def test_unknown_fields_and_nulls_are_ignored(heketi: Any) -> None:
    body = {"size": 1, "whatever": [1], "name": None, "durability": None, "gid": None}
    assert heketi.post("/volumes", body).status_code == 202


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({}, "validation failed: size: cannot be blank."),
        ({"size": 0}, "validation failed: size: cannot be blank."),
        ({"size": -1}, "validation failed: size: must be no less than 1."),
        ({"size": 1, "name": "a b"}, "validation failed: name: must be in a valid format."),
        ({"size": 1, "name": "é"}, "validation failed: name: must be in a valid format."),
        (
            {"size": 0, "name": "x/y"},
            "validation failed: name: must be in a valid format; size: cannot be blank.",
        ),
        ({"size": 1, "gid": -1}, "Bad group id less than zero"),
        ({"size": 1, "gid": 2147483647}, "Bad group id equal or greater than 2**32"),
        ({"size": 1, "durability": {"type": "mirror"}}, "Unknown durability type"),
        ({"size": 1, "snapshot": {"enable": True}}, "Invalid snapshot factor"),
        ({"size": 1, "snapshot": {"enable": True, "factor": 0.5}}, "Invalid snapshot factor"),
        ({"size": 1, "snapshot": {"enable": True, "factor": 101}}, "Invalid snapshot factor"),
        (
            {"size": 1, "durability": {"type": "replicate", "replicate": {"replica": 4}}},
            "Invalid replica value",
        ),
        ({"size": 1, "durability": {"type": "disperse"}}, "Invalid dispersion combination: 0+0"),
        (
            {
                "size": 8,
                "durability": {"type": "disperse", "disperse": {"data": 4, "redundancy": 1}},
            },
            "Invalid dispersion combination: 4+1",
        ),
        ({"size": 1, "clusters": [UNKNOWN]}, f"Cluster id {UNKNOWN} not found"),
        (
            {
                "size": 1,
                "durability": {"type": "disperse", "disperse": {"data": 2, "redundancy": 1}},
            },
            TOO_SMALL.format(1, 2097152),
        ),
        (
            {
                "size": 7,
                "durability": {"type": "disperse", "disperse": {"data": 8, "redundancy": 4}},
            },
            TOO_SMALL.format(7, 8388608),
        ),
    ],
)
def test_bad_requests_are_400(heketi: Any, body: dict[str, Any], text: str) -> None:
    assert answer(heketi, body) == (400, text)


def test_order_of_checks(heketi: Any) -> None:
    """An earlier check wins when several would fail."""
    assert answer(heketi, {"size": 0, "gid": -1})[1].startswith("validation failed")
    assert answer(heketi, {"size": 1, "gid": -1, "durability": {"type": "x"}})[1] == (
        "Bad group id less than zero"
    )
    bad_both = {"size": 1, "durability": {"type": "x"}, "snapshot": {"enable": True}}
    assert answer(heketi, bad_both)[1] == "Unknown durability type"
    bad_snap_replica = {
        "size": 1,
        "durability": {"type": "replicate", "replicate": {"replica": 5}},
        "snapshot": {"enable": True},
    }
    assert answer(heketi, bad_snap_replica)[1] == "Invalid snapshot factor"
    assert answer(heketi, {"size": 1, "clusters": [UNKNOWN], "gid": 2**31})[1] == (
        "Bad group id equal or greater than 2**32"
    )


def test_valid_edges_are_accepted(heketi: Any) -> None:
    assert heketi.post("/volumes", {"size": 1, "gid": 2147483646}).status_code == 202
    assert heketi.post("/volumes", {"size": 1, "gid": 0}).status_code == 202
    assert heketi.post("/volumes", {"size": 1, "name": "A-b_9" * 40}).status_code == 202
    snap = {"size": 1, "snapshot": {"enable": True, "factor": 100}}
    assert heketi.post("/volumes", snap).status_code == 202
    assert heketi.post("/volumes", {"size": 1, "snapshot": {"factor": 0}}).status_code == 202


def test_no_clusters_configured(make_sim: Callable[..., HeketiSimulator], client_for: Any) -> None:
    sim = make_sim(clusters=0)
    assert answer(client_for(sim), {"size": 1}) == (400, "No clusters configured")


def test_duplicate_name_in_one_cluster(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    sim = make_sim(latency=60.0)
    heketi = client_for(sim)
    assert heketi.post("/volumes", {"size": 1, "name": "twin"}).status_code == 202
    # The first one is still in flight: it counts.
    assert answer(heketi, {"size": 1, "name": "twin"}) == (
        500,
        "Failed to allocate new volume: Volume name 'twin' already in use",
    )
    sim.complete_pending()
    assert answer(heketi, {"size": 1, "name": "twin"})[0] == 500


def test_no_space(heketi: Any) -> None:
    assert answer(heketi, {"size": 100000}) == (500, "Failed to allocate new volume: No space")


def test_cluster_level_reasons(make_sim: Callable[..., HeketiSimulator], client_for: Any) -> None:
    sim = make_sim(clusters=0)
    heketi = client_for(sim)
    empty = sim.add_cluster()
    no_file = sim.add_cluster(file=False)
    disabled = sim.add_cluster(file=False, block=False)
    node = sim.add_node(empty, devices=0)
    with_nodes = sim.add_cluster()
    offline_node = sim.add_node(with_nodes, devices=1)
    sim.set_node_state(offline_node, "offline")
    no_nodes = sim.add_cluster()
    cases = {
        empty: "No online storage devices in cluster",
        no_file: "Cluster does not support requested volume type",
        disabled: "Cluster has disabled all volume types",
        with_nodes: "No online storage devices in cluster",
        no_nodes: "No nodes in cluster",
    }
    for cluster_id, reason in cases.items():
        assert answer(heketi, {"size": 1, "clusters": [cluster_id]}) == (
            500,
            f"Failed to allocate new volume: {reason}",
        )
    assert node
    status, text = answer(heketi, {"size": 1, "clusters": [empty, no_nodes]})
    assert status == 500
    assert text.splitlines() == [
        "Failed to allocate new volume: Unable to create volume on any cluster:",
        f"Cluster {empty}: No online storage devices in cluster",
        f"Cluster {no_nodes}: No nodes in cluster",
    ]


def test_block_volume_needs_block_cluster(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    sim = make_sim(clusters=0)
    cluster = sim.add_cluster(block=False)
    for zone in (1, 2, 3):
        sim.add_node(cluster, zone=zone, devices=1)
    heketi = client_for(sim)
    assert answer(heketi, {"size": 1, "block": True}) == (
        500,
        "Failed to allocate new volume: Cluster does not support requested volume type",
    )
    assert heketi.post("/volumes", {"size": 1}).status_code == 202


def test_name_is_per_cluster(make_sim: Callable[..., HeketiSimulator], client_for: Any) -> None:
    sim = make_sim(clusters=2)
    heketi = client_for(sim)
    first = heketi.create({"size": 1, "name": "shared"})
    second = heketi.create({"size": 1, "name": "shared"})
    assert first["cluster"] != second["cluster"]
    assert answer(heketi, {"size": 1, "name": "shared"})[1].splitlines()[1:] == sorted(
        f"Cluster {c}: Volume name 'shared' already in use" for c in sim.cluster_ids()
    )


def test_requested_cluster_order_is_followed(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    sim = make_sim(clusters=3)
    heketi = client_for(sim)
    last = sim.cluster_ids()[-1]
    assert heketi.create({"size": 1, "clusters": [last]})["cluster"] == last
    assert heketi.create({"size": 1})["cluster"] == sim.cluster_ids()[0]

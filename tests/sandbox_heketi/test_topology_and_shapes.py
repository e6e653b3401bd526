"""Topology endpoints, JSON shapes, routing, metrics and introspection."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from provisioner.sandbox.heketi import HeketiSimulator

GIB = 1024 * 1024
HEX32 = re.compile(r"^[0-9a-f]{32}$")


def test_initial_topology(make_sim: Callable[..., HeketiSimulator], client_for: Any) -> None:
    sim = make_sim(clusters=2, nodes=4, devices_per_node=2, device_size_gb=100)
    heketi = client_for(sim)
    clusters = heketi.get("/clusters").json()["clusters"]
    assert clusters == sorted(clusters) and len(clusters) == 2
    seen_hosts = []
    for cluster_id in clusters:
        cluster = heketi.get(f"/clusters/{cluster_id}").json()
        assert cluster == {
            "id": cluster_id,
            "nodes": sorted(cluster["nodes"]),
            "volumes": [],
            "block": True,
            "file": True,
            "blockvolumes": [],
        }
        assert len(cluster["nodes"]) == 4
        for node_id in cluster["nodes"]:
            node = heketi.get(f"/nodes/{node_id}").json()
            assert set(node) == {"zone", "hostnames", "cluster", "id", "state", "devices"}
            assert node["cluster"] == cluster_id and node["state"] == "online"
            seen_hosts.append(
                (node["hostnames"]["manage"][0], node["hostnames"]["storage"][0], node["zone"])
            )
            assert len(node["devices"]) == 2
            for device in node["devices"]:
                assert device == heketi.get(f"/devices/{device['id']}").json()
                assert device["storage"] == {"total": 100 * GIB, "free": 100 * GIB, "used": 0}
                assert device["state"] == "online" and device["bricks"] == []
                assert device["name"].startswith("/dev/sd")
    assert sorted(seen_hosts)[:4] == [
        ("node1-1.gluster.local", "10.0.1.1", 1),
        ("node1-2.gluster.local", "10.0.1.2", 2),
        ("node1-3.gluster.local", "10.0.1.3", 3),
        ("node1-4.gluster.local", "10.0.1.4", 1),
    ]
    assert ("node2-1.gluster.local", "10.0.2.1", 1) in seen_hosts


def test_volume_json_shape(heketi: Any, sim: HeketiSimulator) -> None:
    volume = heketi.create(
        {
            "size": 3,
            "name": "shape",
            "gid": 2001,
            "glustervolumeoptions": ["performance.rda-cache-limit 10MB"],
            "durability": {"type": "replicate", "replicate": {"replica": 3}},
        }
    )
    assert list(volume) == [
        "size", "name", "durability", "gid", "glustervolumeoptions", "snapshot", "id",
        "cluster", "mount", "blockinfo", "bricks",
    ]  # fmt: skip
    assert volume["durability"] == {
        "type": "replicate",
        "replicate": {"replica": 3},
        "disperse": {},
    }
    assert volume["glustervolumeoptions"] == ["", "performance.rda-cache-limit 10MB", ""]
    assert volume["snapshot"] == {"enable": False, "factor": 1}
    assert volume["blockinfo"] == {}
    mount = volume["mount"]["glusterfs"]
    assert sorted(mount["hosts"]) == ["10.0.1.1", "10.0.1.2", "10.0.1.3"]
    assert mount["device"] == f"{mount['hosts'][0]}:shape"
    assert mount["options"] == {"backup-volfile-servers": ",".join(mount["hosts"][1:])}
    assert HEX32.match(volume["id"]) and volume["cluster"] == sim.cluster_ids()[0]
    plain = heketi.create({"size": 1})
    assert "gid" not in plain and "block" not in plain
    assert plain["glustervolumeoptions"] == ["", ""]
    assert plain["durability"] == {"type": "none", "replicate": {}, "disperse": {}}
    assert plain["name"] == f"vol_{plain['id']}"
    block = heketi.create({"size": 1, "block": True})
    assert block["block"] is True
    assert sim.volumes() == sorted([volume, plain, block], key=lambda v: v["id"])


def test_cluster_lists_volumes_and_devices_list_bricks(heketi: Any, sim: HeketiSimulator) -> None:
    volume = heketi.create(
        {"size": 1, "durability": {"type": "replicate", "replicate": {"replica": 3}}}
    )
    cluster = heketi.get(f"/clusters/{volume['cluster']}").json()
    assert cluster["volumes"] == [volume["id"]]
    for brick in volume["bricks"]:
        device = heketi.get(f"/devices/{brick['device']}").json()
        assert brick in device["bricks"]


def test_create_cluster_flags_default_false(heketi: Any) -> None:
    response = heketi.post("/clusters", {})
    assert response.status_code == 201
    assert (response.json()["block"], response.json()["file"]) == (False, False)
    assert response.json()["id"] in heketi.get("/clusters").json()["clusters"]


@pytest.mark.parametrize(
    ("method", "path", "status", "text"),
    [
        ("GET", "/volumes/not-hex", 404, "Invalid path or request\n"),
        ("GET", "/nodes/xyz", 404, "Invalid path or request\n"),
        ("GET", "/topology", 404, "Invalid path or request\n"),
        ("GET", f"/volumes/{'a' * 32}", 404, "Id not found\n"),
        ("GET", f"/nodes/{'a' * 32}", 404, "Id not found\n"),
        ("GET", f"/devices/{'a' * 32}", 404, "Id not found\n"),
        ("GET", f"/clusters/{'a' * 32}", 404, "Id not found\n"),
        ("POST", f"/volumes/{'a' * 32}/clone", 404, "Id not found\n"),
        ("PUT", "/volumes", 405, ""),
    ],
)
def test_routing(heketi: Any, method: str, path: str, status: int, text: str) -> None:
    response = heketi.call(method, path, {} if method != "GET" else None)
    assert (response.status_code, response.text) == (status, text)


def test_python_client_style_get_with_body(heketi: Any) -> None:
    """Heketi's Python client sends `{}` on GET and no Content-Type; that must work."""
    assert heketi.call("GET", "/clusters", {}).status_code == 200


def test_metrics(heketi: Any, sim: HeketiSimulator) -> None:
    heketi.create({"size": 1})
    text = heketi.get("/metrics").text
    lines = text.splitlines()
    assert "heketi_up 1" in lines
    assert "heketi_cluster_count 1" in lines
    assert f'heketi_volumes_count{{cluster="{sim.cluster_ids()[0]}"}} 1' in lines
    assert f'heketi_nodes_count{{cluster="{sim.cluster_ids()[0]}"}} 3' in lines
    assert sum(1 for line in lines if line.startswith("heketi_device_free{")) == 6


def test_request_records(heketi: Any, sim: HeketiSimulator) -> None:
    heketi.create({"size": 1})
    records = sim.requests
    assert [(r.method, r.route, r.status, r.user) for r in records] == [
        ("POST", "/volumes", 202, "admin"),
        ("GET", "/queue/{id}", 303, "admin"),
        ("GET", "/volumes/{id}", 200, "admin"),
    ]
    assert records[1].path.startswith("/queue/")
    assert sim.request_counts() == {
        "POST /volumes 202": 1,
        "GET /queue/{id} 303": 1,
        "GET /volumes/{id} 200": 1,
    }
    sim.reset_requests()
    assert sim.requests == []


def test_topology_helpers_validate_states(sim: HeketiSimulator) -> None:
    node = sim.node_ids(sim.cluster_ids()[0])[0]
    with pytest.raises(ValueError):
        sim.set_node_state(node, "sleeping")
    sim.set_node_state(node, "failed")
    with pytest.raises(ValueError):
        sim.set_latency({"volume_explode": 1.0})


def test_mount_hosts_are_every_node_of_the_cluster_offline_ones_included(
    make_sim: Callable[..., HeketiSimulator], client_for: Any
) -> None:
    """Heketi fills ``mount.glusterfs.hosts`` from all the cluster's nodes."""
    sim = make_sim(nodes=4, devices_per_node=1)
    nodes = sim.node_ids(sim.cluster_ids()[0])
    sim.set_node_state(nodes[0], "offline")
    volume = client_for(sim).create({"size": 1, "durability": {"type": "replicate"}})
    mount = volume["mount"]["glusterfs"]
    assert len(mount["hosts"]) == 4
    assert nodes[0] not in {b["node"] for b in volume["bricks"]}

"""Models read Heketi's JSON and write it back byte-for-byte equal (as parsed JSON)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from heketi_client import (
    BrickInfo,
    ClusterInfo,
    DeviceInfo,
    Durability,
    NodeInfo,
    VolumeCreateRequest,
    VolumeInfo,
)


def test_volume_round_trip_is_exact(wire: Any) -> None:
    raw = wire.volume_json()
    volume = VolumeInfo.from_json(raw)
    assert volume.to_json() == raw
    assert json.dumps(volume.to_json()) == json.dumps(raw)  # same key order and number types
    assert volume.durability == Durability.replicate(3)
    assert volume.mount_hosts == ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    assert volume.mount_device == f"10.0.0.1:vol_{wire.VOL}"
    assert volume.backup_volfile_servers == ("10.0.0.2", "10.0.0.3")
    assert volume.gid == 2001 and volume.snapshot_factor == 1.0 and not volume.snapshot_enable
    assert volume.bricks[0] == BrickInfo.from_json(wire.brick_json(0))


def test_zero_fields_are_omitted_as_heketi_omits_them(wire: Any) -> None:
    """No gid, no options, distribute-only, one host: Heketi leaves those keys out."""
    raw = wire.volume_json()
    for key in ("gid", "glustervolumeoptions"):
        del raw[key]
    raw["durability"] = {"type": "none", "replicate": {}, "disperse": {}}
    raw["mount"]["glusterfs"] = {
        "hosts": ["10.0.0.1"],
        "device": f"10.0.0.1:{raw['name']}",
        "options": {"backup-volfile-servers": ""},
    }
    volume = VolumeInfo.from_json(raw)
    assert volume.gid == 0 and volume.gluster_volume_options == ()
    assert volume.backup_volfile_servers == ()
    assert volume.durability == Durability.none()
    assert volume.to_json() == raw


@pytest.mark.parametrize(
    ("durability", "raw"),
    [
        (
            Durability.replicate(2),
            {"type": "replicate", "replicate": {"replica": 2}, "disperse": {}},
        ),
        (
            Durability.disperse(4, 2),
            {"type": "disperse", "replicate": {}, "disperse": {"data": 4, "redundancy": 2}},
        ),
        (Durability.none(), {"type": "none", "replicate": {}, "disperse": {}}),
        # replica omitted on create: Heketi places 2 but keeps the empty object.
        (Durability("replicate"), {"type": "replicate", "replicate": {}, "disperse": {}}),
    ],
)
def test_durability_round_trip(durability: Durability, raw: dict[str, Any]) -> None:
    assert durability.to_json() == raw
    assert Durability.from_json(raw) == durability


def test_durability_reads_like_a_storage_class_value() -> None:
    assert str(Durability.replicate(3)) == "replicate:3"
    assert str(Durability.disperse(8, 3)) == "disperse:8:3"
    assert str(Durability.none()) == "none"


@pytest.mark.parametrize(
    "make", [lambda: Durability.replicate(0), lambda: Durability.disperse(4, 0)]
)
def test_durability_rejects_non_positive_counts(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


def test_snapshot_factor_and_extra_fields_survive(wire: Any) -> None:
    raw = wire.volume_json(
        snapshot={"enable": True, "factor": 1.5},
        block=True,
        blockinfo={"freesize": 5, "blockvolume": ["b" * 32]},
    )
    raw["mount"]["glusterfs"]["options"]["other"] = "x"
    volume = VolumeInfo.from_json(raw)
    assert volume.snapshot_enable and volume.snapshot_factor == 1.5
    assert volume.block and volume.block_info.block_volumes == ("b" * 32,)
    assert volume.to_json() == raw


def test_create_request_json_and_back() -> None:
    request = VolumeCreateRequest(
        5,
        name="pvc-1_a",
        clusters=("c" * 32,),
        durability=Durability.disperse(4, 2),
        gid=2000,
        gluster_volume_options=("client.ssl on",),
        snapshot_factor=1.5,
    )
    raw = request.to_json()
    assert raw == {
        "size": 5,
        "name": "pvc-1_a",
        "clusters": ["c" * 32],
        "durability": {
            "type": "disperse",
            "replicate": {},
            "disperse": {"data": 4, "redundancy": 2},
        },
        "gid": 2000,
        "glustervolumeoptions": ["client.ssl on"],
        "snapshot": {"enable": True, "factor": 1.5},
    }
    assert VolumeCreateRequest.from_json(raw) == request
    assert hash(request) == hash(VolumeCreateRequest.from_json(raw))


def test_create_request_defaults_to_replica_three_and_omits_unset_fields() -> None:
    assert VolumeCreateRequest(1).to_json() == {
        "size": 1,
        "durability": {"type": "replicate", "replicate": {"replica": 3}, "disperse": {}},
    }


def test_create_request_accepts_lists_but_stays_hashable() -> None:
    request = VolumeCreateRequest(1, clusters=["c" * 32])  # type: ignore[arg-type]
    assert request.clusters == ("c" * 32,)
    hash(request)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": 0}, "size"),
        ({"size": 1, "name": "has space"}, "name"),
        ({"size": 1, "gid": -1}, "gid"),
        ({"size": 1, "gid": 2147483647}, "gid"),
        ({"size": 1, "snapshot_factor": 0.5}, "snapshot"),
        ({"size": 1, "snapshot_factor": 101}, "snapshot"),
    ],
)
def test_create_request_rejects_what_heketi_would(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        VolumeCreateRequest(**kwargs)


def test_device_and_node_round_trip(wire: Any) -> None:
    device = {
        "name": "/dev/vdb",
        "tags": {"arbiter": "disabled"},
        "storage": {"total": 524156928, "free": 513617920, "used": 10539008},
        "id": wire.DEVICES[0],
        "paths": ["/dev/vdb", "/dev/disk/by-id/virtio-x"],
        "pv_uuid": "ZXvc2p-abc",
        "state": "online",
        "bricks": [wire.brick_json(0)],
    }
    bare_device = {
        "name": "/dev/vdc",
        "storage": {"total": 10, "free": 10, "used": 0},
        "id": wire.DEVICES[1],
        "state": "offline",
        "bricks": [],
    }
    node = {
        "zone": 1,
        "hostnames": {"manage": ["node1.example"], "storage": ["10.0.0.1"]},
        "cluster": wire.CLUSTER,
        "id": wire.NODES[0],
        "state": "online",
        "devices": [device, bare_device],
    }
    assert DeviceInfo.from_json(device).to_json() == device
    assert DeviceInfo.from_json(bare_device).to_json() == bare_device
    parsed = NodeInfo.from_json(node)
    assert parsed.storage_hostnames == ("10.0.0.1",)
    assert parsed.devices[0].free == 513617920 and parsed.devices[0].tags == (
        ("arbiter", "disabled"),
    )
    assert parsed.to_json() == node
    tagged = {**node, "tags": {"rack": "r1"}}
    assert NodeInfo.from_json(tagged).to_json() == tagged


def test_cluster_round_trip(wire: Any) -> None:
    cluster = {
        "id": wire.CLUSTER,
        "nodes": list(wire.NODES),
        "volumes": [wire.VOL],
        "block": True,
        "file": True,
        "blockvolumes": [],
    }
    parsed = ClusterInfo.from_json(cluster)
    assert parsed.nodes == wire.NODES and parsed.file
    assert json.dumps(parsed.to_json()) == json.dumps(cluster)

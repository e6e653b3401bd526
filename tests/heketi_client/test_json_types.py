"""Heketi's JSON is type-checked field by field; ids must be ids.

Without it, a Heketi (or an impostor) sending ``"size": "10"``, ``"gid": true`` or a
cluster id of ``"../x"`` makes ``from_json`` either crash with a bare ``TypeError``
far from the cause, or hand strange values to the provisioner, which writes them into
PVs and Endpoints.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import responses

from heketi_client import (
    ClusterInfo,
    DeviceInfo,
    HeketiClient,
    HeketiError,
    MalformedResponse,
    NodeInfo,
    NotFound,
    OutcomeUnknown,
    UnexpectedResponse,
    UnreadableVolume,
    VolumeCreateRequest,
    VolumeInfo,
)

BAD_IDS = ["A" * 32, "a" * 31, "a" * 33, "g" * 32, "../" + "a" * 29, "", 7, None]


def mutate(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``raw`` with the field at ``a.b[0].c`` set to ``value`` (or removed: ``...``)."""
    out = copy.deepcopy(raw)
    target: Any = out
    steps = [
        int(s) if s.isdigit() else s for s in path.replace("[", ".").replace("]", "").split(".")
    ]
    for step in steps[:-1]:
        target = target[step]
    if value is Ellipsis:
        del target[steps[-1]]
    else:
        target[steps[-1]] = value
    return out


VOLUME_CASES = [
    ("size", "10", "an integer"),
    ("size", True, "an integer"),
    ("size", 10.5, "an integer"),
    ("size", -1, "at least 0"),
    ("name", 5, "a string"),
    ("name", ..., "a string"),
    ("id", "A" * 32, "an id"),
    ("cluster", "not-a-cluster", "an id"),
    ("gid", True, "an integer"),
    ("gid", "2001", "an integer"),
    ("durability", [], "a JSON object"),
    ("durability.replicate.replica", "3", "an integer"),
    ("durability.type", 1, "a string"),
    ("snapshot.enable", "false", "true or false"),
    ("snapshot.factor", "1", "a number"),
    ("glustervolumeoptions", "a b", "a list"),
    ("glustervolumeoptions[0]", 1, "a string"),
    ("mount", ..., "a JSON object"),
    ("mount.glusterfs.hosts", "10.0.0.1", "a list"),
    ("mount.glusterfs.hosts[1]", None, "a string"),
    ("mount.glusterfs.device", ["x"], "a string"),
    ("mount.glusterfs.options", ["x"], "an object of strings"),
    ("mount.glusterfs.options.backup-volfile-servers", 1, "a string"),
    ("bricks", {}, "a list"),
    ("bricks[0]", "brick", "a JSON object"),
    ("bricks[1].size", "10485760", "an integer"),
    ("bricks[2].device", "/dev/vdb", "an id"),
    ("bricks[0].node", "node1", "an id"),
    ("bricks[0].path", None, "a string"),
    ("block", "no", "true or false"),
    ("blockinfo.blockvolume", ["short"], "an id"),
    ("blockinfo.freesize", False, "an integer"),
]


@pytest.mark.parametrize(("field", "value", "expected"), VOLUME_CASES)
def test_volume_fields_are_type_checked(field: str, value: Any, expected: str, wire: Any) -> None:
    raw = mutate(wire.volume_json(blockinfo={"freesize": 1, "blockvolume": []}), field, value)
    with pytest.raises(MalformedResponse) as caught:
        VolumeInfo.from_json(raw)
    error = caught.value
    assert isinstance(error, UnexpectedResponse) and isinstance(error, HeketiError)
    assert error.field.startswith(field.split(".")[0])
    assert expected in error.expected
    assert repr(error.field) in str(error) and error.expected in str(error)


def test_the_field_path_points_at_the_culprit(wire: Any) -> None:
    raw = mutate(wire.volume_json(), "bricks[2].size", "big")
    with pytest.raises(MalformedResponse) as caught:
        VolumeInfo.from_json(raw)
    assert caught.value.field == "bricks[2].size"
    assert (
        str(caught.value) == "field 'bricks[2].size' should be an integer, found the string 'big'"
    )


def test_null_lists_are_empty_as_go_writes_them(wire: Any) -> None:
    """Go encodes a nil slice as null; that is no reason to refuse a volume."""
    raw = wire.volume_json(bricks=None, glustervolumeoptions=None)
    volume = VolumeInfo.from_json(raw)
    assert volume.bricks == () and volume.gluster_volume_options == ()


def node_json(wire: Any) -> dict[str, Any]:
    return {
        "zone": 1,
        "hostnames": {"manage": ["n1"], "storage": ["10.0.0.1"]},
        "cluster": wire.CLUSTER,
        "id": wire.NODES[0],
        "state": "online",
        "devices": [device_json(wire)],
    }


def device_json(wire: Any) -> dict[str, Any]:
    return {
        "name": "/dev/vdb",
        "storage": {"total": 100, "free": 60, "used": 40},
        "id": wire.DEVICES[0],
        "state": "online",
        "bricks": [wire.brick_json(0)],
    }


def cluster_json(wire: Any) -> dict[str, Any]:
    return {
        "id": wire.CLUSTER,
        "nodes": list(wire.NODES),
        "volumes": [wire.VOL],
        "block": False,
        "file": True,
        "blockvolumes": [],
    }


@pytest.mark.parametrize(
    ("model", "make", "field", "value"),
    [
        (NodeInfo, node_json, "zone", "1"),
        (NodeInfo, node_json, "zone", True),
        (NodeInfo, node_json, "hostnames.storage", "10.0.0.1"),
        (NodeInfo, node_json, "hostnames.manage[0]", 1),
        (NodeInfo, node_json, "cluster", "C" * 32),
        (NodeInfo, node_json, "id", 12),
        (NodeInfo, node_json, "state", None),
        (NodeInfo, node_json, "tags", "rack=1"),
        (NodeInfo, node_json, "devices[0].storage.free", "60"),
        (DeviceInfo, device_json, "storage.total", -5),
        (DeviceInfo, device_json, "storage", None),
        (DeviceInfo, device_json, "bricks[0].volume", "vol_1"),
        (DeviceInfo, device_json, "paths", [1]),
        (DeviceInfo, device_json, "pv_uuid", 1),
        (ClusterInfo, cluster_json, "nodes", [1]),
        (ClusterInfo, cluster_json, "volumes[0]", "vol_1"),
        (ClusterInfo, cluster_json, "file", "true"),
        (ClusterInfo, cluster_json, "id", ...),
    ],
)
def test_topology_fields_are_type_checked(
    model: Any, make: Callable[[Any], dict[str, Any]], field: str, value: Any, wire: Any
) -> None:
    model.from_json(make(wire))  # the unchanged document is fine
    with pytest.raises(MalformedResponse) as caught:
        model.from_json(mutate(make(wire), field, value))
    assert caught.value.field.startswith(field.split(".")[0].split("[")[0])


@pytest.mark.parametrize("document", [[], "volumes", None, 3])
def test_the_answer_must_be_an_object(document: Any) -> None:
    with pytest.raises(MalformedResponse, match="a JSON object"):
        VolumeInfo.from_json(document)


def test_create_requests_are_type_checked_too() -> None:
    with pytest.raises(MalformedResponse, match="'size'"):
        VolumeCreateRequest.from_json({"size": "1"})  # type: ignore[typeddict-item]
    with pytest.raises(MalformedResponse, match=r"'clusters\[0\]'"):
        VolumeCreateRequest.from_json({"size": 1, "clusters": ["x"]})


def test_create_requests_refuse_cluster_ids_that_are_not_ids() -> None:
    with pytest.raises(ValueError, match="cluster id"):
        VolumeCreateRequest(1, clusters=("C" * 32,))


# -- through the client -------------------------------------------------------------


@pytest.mark.parametrize("listed", [["x"], ["A" * 32], [1], None, "ids"])
def test_lists_of_ids_are_checked(
    listed: Any, client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    """A list with a non-id would put that string into our next URL."""
    heketi.get(wire.BASE + "/volumes", json={"volumes": listed})
    heketi.get(wire.BASE + "/clusters", json={"clusters": listed})
    with pytest.raises(MalformedResponse) as caught:
        client.list_volumes()
    assert caught.value.field.startswith("volumes")
    assert (caught.value.method, caught.value.path, caught.value.status) == (
        "GET",
        "/volumes",
        200,
    )
    with pytest.raises(MalformedResponse):
        client.list_clusters()


def test_one_bad_volume_is_a_per_volume_error(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    """An index refresh over all volumes skips it, as it skips a NotFound."""
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", json=wire.volume_json(size="ten"))
    with pytest.raises(UnreadableVolume) as caught:
        client.get_volume(wire.VOL)
    error = caught.value
    assert error.volume_id == wire.VOL and not isinstance(error, NotFound)
    assert isinstance(error, UnexpectedResponse)
    assert isinstance(error.__cause__, MalformedResponse)
    assert "'size'" in str(error) and wire.VOL in str(error)
    assert (error.method, error.path, error.status) == ("GET", f"/volumes/{wire.VOL}", 200)


def test_an_answer_about_another_volume_is_refused(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    """Otherwise a Heketi could make us take volume B's mount for volume A's PV."""
    other = "b" * 32
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", json=wire.volume_json(other))
    with pytest.raises(UnreadableVolume, match=other):
        client.get_volume(wire.VOL)


def test_non_json_volume_is_unreadable(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", body="<html>", content_type="text/html")
    with pytest.raises(UnreadableVolume, match="expected JSON"):
        client.get_volume(wire.VOL)


def test_find_by_name_skips_an_unreadable_volume(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    bad, good = "1" * 32, "2" * 32
    heketi.get(wire.BASE + "/volumes", json={"volumes": [bad, good]})
    heketi.get(f"{wire.BASE}/volumes/{bad}", json={"id": bad, "size": []})
    heketi.get(f"{wire.BASE}/volumes/{good}", json=wire.volume_json(good, name="pvc-9"))
    found = client.find_volume_by_name("pvc-9")
    assert found is not None and found.id == good
    # Not found among the readable ones: the unreadable one might be it, so no None.
    with pytest.raises(UnreadableVolume) as caught:
        client.find_volume_by_name("pvc-other")
    assert caught.value.volume_id == bad


def test_an_unreadable_create_result_is_outcome_unknown(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(wire.BASE + "/volumes", status=202, headers={"Location": wire.QUEUE})
    heketi.get(wire.BASE + wire.QUEUE, status=303, headers={"Location": f"/volumes/{wire.VOL}"})
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", json=wire.volume_json(cluster="nope"))
    with pytest.raises(OutcomeUnknown, match="'cluster'") as caught:
        client.create_volume(VolumeCreateRequest(1))
    assert isinstance(caught.value.__cause__, MalformedResponse)


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ids_we_are_given_must_be_heketi_ids(
    bad: Any, client: HeketiClient, heketi: responses.RequestsMock
) -> None:
    """An uppercase id routes in Heketi but is never found: the 404 would read as
    "already deleted" while the volume lives on."""
    for call in (client.get_volume, client.delete_volume, client.get_node, client.get_cluster):
        with pytest.raises(ValueError, match="32 lowercase hexadecimal"):
            call(bad)
    assert not heketi.calls

"""The team's own `heketi_client` driving the simulator: create, poll, get, delete."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from provisioner.sandbox.heketi import HeketiSimulator

heketi_client = pytest.importorskip("heketi_client")
errors = pytest.importorskip("heketi_client.errors")


@pytest.fixture
def client(sim: HeketiSimulator, keys: dict[str, str]) -> Iterator[Any]:
    with heketi_client.HeketiClient(sim.url, user="admin", key=keys["admin"]) as c:
        yield c


def test_create_get_list_delete(client: Any, sim: HeketiSimulator) -> None:
    assert client.hello() == "Hello from Heketi"
    request = heketi_client.VolumeCreateRequest(size=2, name="via_client", gid=2000)
    volume = client.create_volume(request)
    assert volume.name == "via_client" and volume.size == 2 and volume.gid == 2000
    assert len(volume.bricks) == 3  # the client's default durability is replicate 3
    assert len({b.node for b in volume.bricks}) == 3
    assert client.list_volumes() == [volume.id]
    assert client.get_volume(volume.id).mount_device == volume.mount_device
    assert client.find_volume_by_name("via_client").id == volume.id
    counts = sim.request_counts()
    assert counts["POST /volumes 202"] == 1
    assert counts["GET /queue/{id} 303"] == 1
    client.delete_volume(volume.id)
    assert client.list_volumes() == []
    assert sim.request_counts()["GET /queue/{id} 204"] == 1
    with pytest.raises(errors.NotFound):
        client.delete_volume(volume.id)


def test_topology_through_client(client: Any, sim: HeketiSimulator) -> None:
    (cluster_id,) = client.list_clusters()
    cluster = client.get_cluster(cluster_id)
    assert len(cluster.nodes) == 3
    node = client.get_node(cluster.nodes[0])
    device = client.get_device(node.devices[0].id)
    assert device.id == node.devices[0].id


def test_expand_and_clone_through_client(client: Any) -> None:
    volume = client.create_volume(heketi_client.VolumeCreateRequest(size=1))
    assert client.expand_volume(volume.id, 2).size == 3
    clone = client.clone_volume(volume.id, name="copy")
    assert clone.name == "copy" and clone.id != volume.id


def test_client_sees_allocation_errors(client: Any, sim: HeketiSimulator) -> None:
    with pytest.raises(errors.NoSpace):
        client.create_volume(heketi_client.VolumeCreateRequest(size=100000))
    client.create_volume(heketi_client.VolumeCreateRequest(size=1, name="taken"))
    with pytest.raises(errors.VolumeNameInUse):
        client.create_volume(heketi_client.VolumeCreateRequest(size=1, name="taken"))


def test_client_sees_failed_operations(client: Any, sim: HeketiSimulator) -> None:
    sim.faults.fail_async_next("volume_create", text="brick mount failed")
    with pytest.raises(errors.OperationFailed):
        client.create_volume(heketi_client.VolumeCreateRequest(size=1))
    assert sim.volumes() == []


def test_client_with_user_identity_cannot_poll(
    make_sim: Callable[..., HeketiSimulator], keys: dict[str, str]
) -> None:
    sim = make_sim()
    user_client = heketi_client.HeketiClient(sim.url, user="user", key=keys["user"])
    with user_client, pytest.raises(errors.HeketiError):
        user_client.create_volume(heketi_client.VolumeCreateRequest(size=1, name="u1"))
    # The POST itself was accepted; only the poll was refused.
    assert sim.request_counts()["POST /volumes 202"] == 1
    assert sim.request_counts()["GET /queue/{id} 401"] >= 1

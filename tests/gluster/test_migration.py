"""What a migrating operator brings along: old PVs' class annotation, and Heketi
topologies that name nodes by host name."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from provisioner.controller.contract import InvalidInput
from provisioner.gluster.annotations import ANN_GID

if TYPE_CHECKING:
    from conftest import World


def test_an_old_pvs_gid_counts_for_the_class_its_beta_annotation_names(world: World) -> None:
    """PVs from before ``spec.storageClassName`` carry only the beta annotation; filed
    under no class, their GID would be handed out again to a new claim."""
    sc = world.storage_class()
    name = sc["metadata"]["name"]
    old_pv = {
        "metadata": {
            "name": "pvc-old",
            "annotations": {ANN_GID: "2000", "volume.beta.kubernetes.io/storage-class": name},
        },
        "spec": {},
    }
    gluster = world.provisioner()
    gluster.prepare([old_pv], [])
    pv = gluster.provision(world.claim(sc), sc)
    assert pv["metadata"]["annotations"][ANN_GID] == "2001"


def test_a_node_named_by_host_name_is_refused_before_the_create(world: World) -> None:
    """Endpoints take IPs only: a volume on a node whose storage address is a host
    name could never be mounted, and the API server would refuse its Endpoints after
    the volume exists. In-tree refused such a node too; we say which one, and ask
    Heketi for nothing but its topology."""
    (cluster,) = world.sim.cluster_ids()
    world.sim.add_node(cluster, storage="gluster-4.storage.example", devices=1)
    sc = world.storage_class()
    with pytest.raises(InvalidInput) as caught:
        world.provisioner().provision(world.claim(sc), sc)
    assert "gluster-4.storage.example" in caught.value.message
    assert "not an IP address" in caught.value.message
    assert not any(key.startswith("POST") for key in world.counts())
    assert world.sim.volumes() == []


def test_a_class_naming_only_clusters_with_ip_addresses_is_not_held_back(world: World) -> None:
    """Only the clusters a class may place volumes on are checked."""
    (good,) = world.sim.cluster_ids()
    world.sim.add_node(world.sim.add_cluster(), storage="gluster-9.storage.example", devices=1)
    sc = world.storage_class(clusterid=good)
    pv = world.provisioner().provision(world.claim(sc), sc)
    assert pv["metadata"]["name"].startswith("pvc-")

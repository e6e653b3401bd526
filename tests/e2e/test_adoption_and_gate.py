"""Adopting the in-tree provisioner's PVs, and the Kubernetes version gate."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from heketi_client import HeketiClient, VolumeCreateRequest
from provisioner.controller.keys import ANN_PROVISIONED_BY
from provisioner.gluster.annotations import ANN_GID, ANN_HEKETI_VOLUME_ID

if TYPE_CHECKING:
    from conftest import Cluster

IN_TREE = "kubernetes.io/glusterfs"
NAMESPACE = "default"
ADMIN_KEY = "e2e-admin-key-0123456789abcdef"


def in_tree_volume(cluster: Cluster, sc: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A claim bound to a PV exactly as the in-tree provisioner left them."""
    with HeketiClient(cluster.sim.url, user="admin", key=ADMIN_KEY) as heketi:
        volume = heketi.create_volume(VolumeCreateRequest(size=1, gid=2000))
    assert volume.name == f"vol_{volume.id}"
    claim = cluster.claim(sc, volumeName=f"pvc-intree-{volume.id[:8]}")
    uid = claim["metadata"]["uid"]
    endpoints = f"glusterfs-dynamic-{uid}"
    labels = {"gluster.kubernetes.io/provisioned-for-pvc": claim["metadata"]["name"]}
    meta = {"name": endpoints, "namespace": NAMESPACE, "labels": labels}
    cluster.kube.create(
        "endpoints",
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": meta,
         "subsets": [{"addresses": [{"ip": h} for h in volume.mount_hosts],
                      "ports": [{"port": 1}]}]},
        NAMESPACE,
    )  # fmt: skip
    cluster.kube.create(
        "services",
        {"apiVersion": "v1", "kind": "Service", "metadata": meta,
         "spec": {"ports": [{"port": 1}]}},
        NAMESPACE,
    )  # fmt: skip
    pv = cluster.kube.create(
        "persistentvolumes",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": claim["spec"]["volumeName"],
                "annotations": {
                    ANN_GID: "2000",
                    ANN_HEKETI_VOLUME_ID: volume.id,
                    ANN_PROVISIONED_BY: IN_TREE,
                    "gluster.org/type": "file",
                    "kubernetes.io/createdby": "heketi-dynamic-provisioner",
                    "Description": "Gluster-Internal: Dynamically provisioned PV",
                },
            },
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete",
                "storageClassName": sc,
                "claimRef": {"namespace": NAMESPACE, "name": claim["metadata"]["name"],
                             "uid": uid},
                "glusterfs": {"endpoints": endpoints, "path": volume.name},
            },
        },
    )  # fmt: skip
    return claim, pv


def test_in_tree_pv_is_adopted_and_deleted(cluster_factory: Any) -> None:
    cluster = cluster_factory(with_controller=False)
    sc = cluster.storage_class(provisioner=IN_TREE)
    old_claim, old_pv = in_tree_volume(cluster, sc)
    cluster.bound_pv(old_claim)  # the sandbox binder binds them

    cluster.start_controller(provisioner_name=IN_TREE)
    new_pv = cluster.bound_pv(cluster.claim(sc))
    assert new_pv["metadata"]["annotations"][ANN_GID] == "2001"  # 2000 counted at start
    assert new_pv["metadata"]["annotations"][ANN_PROVISIONED_BY] == IN_TREE

    cluster.delete_claim(old_claim)

    name = old_pv["metadata"]["name"]
    cluster.wait_for(lambda: cluster.get("persistentvolumes", name) is None, what="PV gone")
    remaining = [v["id"] for v in cluster.sim.volumes()]
    assert old_pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID] not in remaining
    assert len(remaining) == 1
    endpoints = old_pv["spec"]["glusterfs"]["endpoints"]
    assert cluster.get("endpoints", endpoints, NAMESPACE) is None
    assert cluster.get("services", endpoints, NAMESPACE) is None


@pytest.mark.parametrize("version", ["1.25.16", "1.30.2"])
def test_version_gate(cluster_factory: Any, version: str) -> None:
    cluster = cluster_factory(kube_version=version)
    claim = cluster.claim(cluster.storage_class())
    if version.startswith("1.25"):
        cluster.bound_pv(claim)
        assert len(cluster.sim.volumes()) == 1
        return
    message = cluster.warning(claim)
    assert version in message and "glusterfs" in message, message
    assert cluster.sim.requests == []
    assert cluster.fresh_claim(claim)["status"].get("phase") == "Pending"

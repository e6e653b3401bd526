"""Kubernetes 1.26+: gluster-block claims bind to iSCSI PVs (with a CHAP Secret), and
``pvtype: nfs`` claims bind to NFS PVs, on a sandbox reporting 1.30 without
``--assume-glusterfs-plugin``; delete removes the block volume and the Secret."""

from __future__ import annotations

import base64
from typing import Any

from provisioner.gluster.block.objects import CHAP_PASSWORD, CHAP_SECRET_TYPE, CHAP_USERNAME
from tests.e2e.conftest import ADMIN_KEY, NAMESPACE, Cluster

BLOCK = "gluster.org/glusterblock"


def block_class(cluster: Cluster, **params: Any) -> str:
    secret = cluster.secret(type_=BLOCK)
    defaults = {
        "secretNamespace": None,
        "secretName": None,
        "restsecretnamespace": NAMESPACE,
        "restsecretname": secret,
        "hacount": "3",
    }
    return cluster.storage_class(secret=None, provisioner=BLOCK, **{**defaults, **params})


def test_block_claim_binds_to_iscsi_pv_with_chap_secret_and_delete_removes_both(
    cluster_factory: Any,
) -> None:
    cluster = cluster_factory(kube_version="1.30.0")
    claim = cluster.claim(block_class(cluster), size="3Gi", accessModes=["ReadWriteOnce"])
    pv = cluster.bound_pv(claim)

    [block] = cluster.sim.block_volumes()
    iscsi = pv["spec"]["iscsi"]
    hosts = block["blockvolume"]["hosts"]
    assert iscsi["targetPortal"] == f"{hosts[0]}:3260"
    assert iscsi["portals"] == [f"{h}:3260" for h in hosts[1:]]
    assert len(hosts) == 3
    assert iscsi["iqn"] == block["blockvolume"]["iqn"]
    assert iscsi["lun"] == 0 and iscsi["fsType"] == "xfs" and iscsi["readOnly"] is False
    assert iscsi["chapAuthSession"] is True
    assert "glusterfs" not in pv["spec"]
    assert pv["spec"]["capacity"]["storage"] == "3Gi"
    assert block["name"] == pv["metadata"]["name"]  # pvc-<claim uid>: found again by name
    assert "pv.beta.kubernetes.io/gid" not in pv["metadata"]["annotations"]

    ref = iscsi["secretRef"]
    assert ref["namespace"] == NAMESPACE
    secret = cluster.get("secrets", ref["name"], NAMESPACE)
    assert secret is not None and secret["type"] == CHAP_SECRET_TYPE
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data[CHAP_USERNAME] == block["blockvolume"]["username"]
    assert data[CHAP_PASSWORD] == block["blockvolume"]["password"]
    # No Endpoints or Service for an iSCSI PV.
    assert not cluster.sandbox.list_objects("endpoints", NAMESPACE)

    # Nothing secret reached an event.
    for event in cluster.events(claim):
        assert block["blockvolume"]["password"] not in str(event.get("message"))
        assert ADMIN_KEY not in str(event.get("message"))

    cluster.delete_claim(claim)
    cluster.wait_for(
        lambda: cluster.get("persistentvolumes", pv["metadata"]["name"]) is None,
        20.0,
        "the PV to go",
    )
    assert cluster.sim.block_volumes() == []
    assert cluster.get("secrets", ref["name"], NAMESPACE) is None
    # The hosting volume stays, with its space back.
    [hosting] = cluster.sim.volumes()
    assert hosting["blockinfo"].get("blockvolume") is None
    assert hosting["blockinfo"]["freesize"] + hosting["blockinfo"]["reservedsize"] == 100


def test_block_without_chap_writes_no_secret(cluster_factory: Any) -> None:
    cluster = cluster_factory(kube_version="1.30.0")
    name = block_class(cluster, chapauthenabled="false", fstype="ext4", hacount="2")
    claim = cluster.claim(name, accessModes=["ReadOnlyMany"])
    pv = cluster.bound_pv(claim)
    iscsi = pv["spec"]["iscsi"]
    assert "secretRef" not in iscsi and "chapAuthSession" not in iscsi
    assert iscsi["fsType"] == "ext4" and len(iscsi["portals"]) == 1
    assert not [
        s for s in cluster.sandbox.list_objects("secrets", NAMESPACE)
        if s.get("type") == CHAP_SECRET_TYPE
    ]  # fmt: skip


def test_block_refuses_read_write_many_with_an_event(cluster_factory: Any) -> None:
    cluster = cluster_factory(kube_version="1.30.0")
    claim = cluster.claim(block_class(cluster), accessModes=["ReadWriteMany"])
    message = cluster.warning(claim)
    assert "spec.accessModes" in message and "ReadWriteMany" in message
    assert cluster.sim.block_volumes() == []


def test_nfs_claim_binds_to_nfs_pv_on_1_30_without_the_plugin(cluster_factory: Any) -> None:
    cluster = cluster_factory(kube_version="1.30.0")
    name = cluster.storage_class(pvtype="nfs", nfsserver="gluster-vip.example.com")
    claim = cluster.claim(name, accessModes=["ReadWriteMany"])
    pv = cluster.bound_pv(claim)
    [volume] = cluster.sim.volumes()
    assert pv["spec"]["nfs"] == {
        "server": "gluster-vip.example.com",
        "path": f"/{volume['name']}",
        "readOnly": False,
    }
    assert "glusterfs" not in pv["spec"]
    assert "ganesha.enable on" in volume["glustervolumeoptions"]
    assert not cluster.sandbox.list_objects("endpoints", NAMESPACE)
    assert not cluster.sandbox.list_objects("services", NAMESPACE)

    cluster.delete_claim(claim)
    cluster.wait_for(lambda: not cluster.sim.volumes(), 20.0, "the Heketi volume to go")


def test_glusterfs_class_still_gated_on_1_30(cluster_factory: Any) -> None:
    cluster = cluster_factory(kube_version="1.30.0")
    claim = cluster.claim(cluster.storage_class())
    assert "1.26" in cluster.warning(claim)
    assert cluster.sim.volumes() == []


def test_block_off_leaves_block_classes_alone(cluster_factory: Any) -> None:
    cluster = cluster_factory(kube_version="1.30.0", block_provisioner_name="")
    claim = cluster.claim(block_class(cluster))
    nfs = cluster.claim(cluster.storage_class(pvtype="nfs", nfsserver="10.9.9.9"))
    cluster.bound_pv(nfs)  # the controller is working...
    fresh = cluster.fresh_claim(claim)
    assert fresh is not None and fresh["status"].get("phase") == "Pending"  # ...not on this one
    ours = {"Provisioning", "ProvisioningFailed", "ProvisioningSucceeded"}
    assert not [e for e in cluster.events(claim) if e.get("reason") in ours]
    assert cluster.sim.block_volumes() == []


def test_takeover_mode_serves_glusterfs_and_block_classes_side_by_side(
    cluster_factory: Any,
) -> None:
    """``--provisioner-name kubernetes.io/glusterfs`` on 1.30: its classes' claims are
    acted on without the storage-provisioner annotation (the PV controller never sets
    it); block claims still wait for it, as for any external name."""
    cluster: Cluster = cluster_factory(kube_version="1.30.0", with_controller=False)
    controller = cluster.start_controller(
        provisioner_name="kubernetes.io/glusterfs", assume_glusterfs_plugin=True
    )
    file_pv = cluster.bound_pv(
        cluster.claim(cluster.storage_class(provisioner="kubernetes.io/glusterfs"))
    )
    block_pv = cluster.bound_pv(cluster.claim(block_class(cluster)))
    assert "glusterfs" in file_pv["spec"] and "iscsi" in block_pv["spec"]
    assert controller._takeover("kubernetes.io/glusterfs") is True
    assert controller._takeover(BLOCK) is False


def test_a_burst_on_an_empty_heketi_makes_one_block_hosting_volume(cluster_factory: Any) -> None:
    """Heketi places a block volume only into a hosting volume whose create finished:
    concurrent first creates would each make one (and run out of space). The first
    create per server goes alone; the rest follow into the same hosting volume."""
    cluster = cluster_factory(kube_version="1.30.0")
    cluster.sim.set_latency({"blockvolume_create": 0.2})
    name = block_class(cluster)
    claims = [cluster.claim(name) for _ in range(6)]
    for claim in claims:
        cluster.bound_pv(claim)
    assert len({b["blockhostingvolume"] for b in cluster.sim.block_volumes()}) == 1
    assert len(cluster.sim.volumes()) == 1
    assert cluster.heketi_counts()["POST /blockvolumes 202"] == 6

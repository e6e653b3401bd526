"""What block and NFS classes write, field by field, validated against the Kubernetes
schemas of 1.25 and of the newest release ``kubernetes-validate`` knows; and the
checks on Heketi's block answer (a hostile Heketi cannot choose what the PV says)."""

from __future__ import annotations

import base64
from typing import Any

import kubernetes_validate
import pytest

from heketi_client import BlockVolumeInfo
from provisioner.controller.keys import ANN_PROVISIONED_BY
from provisioner.gluster.block.answers import answer_problem
from provisioner.gluster.block.objects import (
    CHAP_PASSWORD,
    CHAP_USERNAME,
    block_delete_info,
    build_block_pv,
    build_chap_secret,
    portal,
)
from provisioner.gluster.block.parameters import parse_block_parameters
from provisioner.gluster.objects import build_pv, delete_info, endpoints_of
from provisioner.gluster.parameters import parse_class_parameters

UID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
VERSIONS = sorted({"1.25", ".".join(kubernetes_validate.latest_version().split(".")[:2])})
CLAIM: dict[str, Any] = {
    "metadata": {"name": "db", "namespace": "team-a", "uid": UID},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
}
CLASS: dict[str, Any] = {"metadata": {"name": "block"}, "reclaimPolicy": "Delete"}
VOLUME = BlockVolumeInfo(
    id="b" * 32,
    name=f"pvc-{UID}",
    size=2,
    hosts=("10.0.1.1", "10.0.1.2", "10.0.1.3"),
    iqn="iqn.2016-12.org.gluster-block:6a0a9d3e-1111-2222-3333-444455556666",
    lun=0,
    username="6a0a9d3e-1111-2222-3333-444455556666",
    password="chap-secret-password",
    hacount=3,
    auth=True,
)


def block_pv(**params: str) -> dict[str, Any]:
    parsed = parse_block_parameters({"resturl": "http://heketi:8080", **params})
    return build_block_pv(
        claim=CLAIM, storage_class=CLASS, params=parsed,
        provisioner_name="gluster.org/glusterblock", volume=VOLUME,
        resturl="http://heketi:8080", chap=parsed.chap,
    )  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
def test_iscsi_pv_with_chap(version: str) -> None:
    pv = block_pv(restuser="admin", restsecretnamespace="heketi", restsecretname="key")
    iscsi = pv["spec"]["iscsi"]
    assert iscsi == {
        "targetPortal": "10.0.1.1:3260",
        "portals": ["10.0.1.2:3260", "10.0.1.3:3260"],
        "iqn": VOLUME.iqn,
        "lun": 0,
        "fsType": "xfs",
        "readOnly": False,
        "chapAuthSession": True,
        "secretRef": {"name": f"glusterblk-{UID}-secret", "namespace": "team-a"},
    }
    assert pv["metadata"]["name"] == f"pvc-{UID}"
    assert pv["metadata"]["annotations"][ANN_PROVISIONED_BY] == "gluster.org/glusterblock"
    assert "chap-secret-password" not in str(pv)
    kubernetes_validate.validate(pv, version, strict=True)
    info = block_delete_info(pv)
    assert (info.volume_id, info.rest_url, info.rest_user) == (
        "b" * 32,
        "http://heketi:8080",
        "admin",
    )
    assert (info.secret_namespace, info.secret_name) == ("heketi", "key")
    assert (info.chap_namespace, info.chap_name, info.claim_uid) == (
        "team-a", f"glusterblk-{UID}-secret", UID,
    )  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
def test_chap_secret(version: str) -> None:
    secret = build_chap_secret(CLAIM, VOLUME)
    assert secret["type"] == "kubernetes.io/iscsi-chap"
    assert secret["metadata"]["namespace"] == "team-a"
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {CHAP_USERNAME: VOLUME.username, CHAP_PASSWORD: VOLUME.password}
    kubernetes_validate.validate(secret, version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
def test_iscsi_pv_without_chap_and_one_host(version: str) -> None:
    pv = block_pv(chapauthenabled="false", fstype="ext4")
    iscsi = pv["spec"]["iscsi"]
    assert "secretRef" not in iscsi and "chapAuthSession" not in iscsi
    assert iscsi["fsType"] == "ext4"
    kubernetes_validate.validate(pv, version, strict=True)


def test_ipv6_portals_are_bracketed() -> None:
    assert portal("fd00::1") == "[fd00::1]:3260"
    assert portal("gluster-1.example.com") == "gluster-1.example.com:3260"


def test_pvs_of_the_retired_glusterblock_provisioner_can_be_deleted() -> None:
    legacy = {
        "metadata": {
            "name": "pvc-x",
            "annotations": {
                "glusterBlockShare": "blockvol_" + "c" * 32,
                "Blockstring": "url:http://heketi:8080,user:admin,secret:heketi-secret,"
                "secretnamespace:default",
                "AccessKey": "glusterblk-heketi-user-secret",
                "AccessKeyNs": "team-a",
            },
        },
        "spec": {"iscsi": {}, "claimRef": {"uid": UID, "namespace": "team-a"}},
    }
    info = block_delete_info(legacy)
    assert info.volume_id == "c" * 32
    assert (info.rest_url, info.rest_user) == ("http://heketi:8080", "admin")
    assert (info.secret_namespace, info.secret_name) == ("default", "heketi-secret")
    assert (info.chap_namespace, info.chap_name) == ("team-a", "glusterblk-heketi-user-secret")


@pytest.mark.parametrize("version", VERSIONS)
def test_nfs_pv(version: str) -> None:
    params = parse_class_parameters(
        {"resturl": "http://heketi:8080", "pvtype": "nfs", "nfsserver": "10.0.0.50"}
    )
    pv = build_pv(
        claim=CLAIM, storage_class=CLASS, params=params, provisioner_name="gluster.org/heketi",
        volume_id="a" * 32, volume_name=f"pvc-{UID}", size_gib=2, gid=2001,
        endpoints_name=f"glusterfs-dynamic-{UID}", resturl="http://heketi:8080",
        secret_namespace=None, secret_name=None, rest_user=None,
    )  # fmt: skip
    assert pv["spec"]["nfs"] == {"server": "10.0.0.50", "path": f"/pvc-{UID}", "readOnly": False}
    assert "glusterfs" not in pv["spec"]
    assert endpoints_of(pv) is None  # nothing to watch or repair
    assert delete_info(pv).volume_name == f"pvc-{UID}"
    assert pv["metadata"]["annotations"]["pv.beta.kubernetes.io/gid"] == "2001"
    assert "ganesha.enable on" in params.volume_options
    kubernetes_validate.validate(pv, version, strict=True)


GOOD = {"hosts": ("10.0.1.1",), "iqn": VOLUME.iqn, "username": "u", "password": "p"}


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"hosts": ()}, "no hosts"),
        ({"hosts": ("10.0.1.1", "evil host; rm -rf")}, "not a host name"),
        ({"hosts": ("attacker.example:3260",)}, "not a host name"),
        ({"iqn": "fakeIQN"}, "not an iSCSI name"),
        ({"iqn": "iqn.2016-12.org.gluster-block"}, "not an iSCSI name"),
        ({"lun": 256}, "LUN 256"),
        ({"password": ""}, "without CHAP credentials"),
    ],
)
def test_a_bad_heketi_answer_writes_no_pv(change: dict[str, Any], says: str) -> None:
    fields = {**GOOD, **change}
    volume = BlockVolumeInfo(id="b" * 32, name="pvc-1", size=1, **fields)
    problem = answer_problem(volume, chap=True)
    assert problem is not None and says in problem
    assert (
        answer_problem(BlockVolumeInfo(id="b" * 32, name="pvc-1", size=1, **GOOD), chap=True)
        is None
    )

"""Kubernetes 1.26+ without ``--assume-glusterfs-plugin``, on the real peers (current
kube-apiserver + kube-controller-manager, Heketi v10.3.0 with its mock executor), our
controller as ServiceAccount under the RBAC of manifests/:

* a ``pvtype: nfs`` claim binds to an NFS PV through the real binder, and its delete
  removes the Heketi volume;
* a glusterblock claim makes a real Heketi block volume (auto-created block-hosting
  volume, CHAP credentials). The mock executor answers the IQN ``fakeIQN``, which is
  not an iSCSI name, so the controller refuses to write a PV from it (the real API
  server would refuse that PV): the claim's event says so, nothing is written, and
  after the claim goes the orphan sweep deletes the block volume: no leak;
* the PV and CHAP Secret we write for a real gluster-block answer are accepted by the
  real API server (dry run), and the real authorizer lets the ServiceAccount create
  and delete Secrets but not list them.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from heketi_client import BlockVolumeInfo
from provisioner.gluster.block.objects import build_block_pv, build_chap_secret
from provisioner.gluster.block.parameters import parse_block_parameters
from testbeds.harness.controller import (
    CONTROLLER_NAMESPACE,
    SERVICE_ACCOUNT,
    install_rbac,
    make_claim,
    make_heketi_secret,
    make_namespace,
    make_storage_class,
)
from testbeds.peers import RealHeketi, RealKube, wait_for

from .conftest import ControllerFactory
from .test_flows import claim_path, get_or_none, wait_bound, wait_event, wait_gone

pytestmark = pytest.mark.timeout(240)

BLOCK = "gluster.org/glusterblock"
WAIT = 60.0
SWEEP = {"orphan_sweep_period": 1.0, "orphan_grace_seconds": 1.0}


@pytest.fixture
def current(real_kube: RealKube) -> RealKube:
    if real_kube.version == "1.25":
        pytest.skip("the 1.26+ paths are shown on the current release")
    return real_kube


def block_names(heketi: RealHeketi) -> dict[str, str]:
    ids = heketi.get("/blockvolumes")["blockvolumes"]
    return {heketi.get(f"/blockvolumes/{i}")["name"]: i for i in ids}


def test_nfs_claim_binds_without_the_plugin_flag(
    current: RealKube, kube_heketi: RealHeketi, controller_factory: ControllerFactory
) -> None:
    controller_factory(current)  # no --assume-glusterfs-plugin
    make_storage_class(
        current, "real-nfs", kube_heketi,
        parameters={"pvtype": "nfs", "nfsserver": "nfs-vip.example.com"},
    )  # fmt: skip
    claim = make_claim(current, "team-nfs", "shared", "real-nfs", access_modes=["ReadWriteMany"])
    pvc = wait_bound(current, "team-nfs", "shared")
    pv = current.get(f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
    volume_id = pv["metadata"]["annotations"]["gluster.kubernetes.io/heketi-volume-id"]
    volume = kube_heketi.get(f"/volumes/{volume_id}")
    # readOnly: false is Go's zero value: the API server stores it as absent.
    assert pv["spec"]["nfs"] == {"server": "nfs-vip.example.com", "path": f"/{volume['name']}"}
    assert "glusterfs" not in pv["spec"]
    assert "ganesha.enable on" in volume["glustervolumeoptions"]
    services = current.get("/api/v1/namespaces/team-nfs/services")["items"]
    assert services == []

    current.request("DELETE", claim_path("team-nfs", "shared"), ok=(200,))
    wait_gone(current, f"/api/v1/persistentvolumes/{pv['metadata']['name']}")
    assert kube_heketi.request("GET", f"/volumes/{volume_id}").status_code == 404
    assert claim["metadata"]["uid"]


def test_block_claim_on_the_mock_executor_is_refused_and_leaves_nothing(
    current: RealKube, kube_heketi: RealHeketi, controller_factory: ControllerFactory
) -> None:
    controller_factory(current, **SWEEP)
    ns, name = make_heketi_secret(current, kube_heketi, name="heketi-block-key")
    current.create(
        "/apis/storage.k8s.io/v1/storageclasses",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "real-block"},
            "provisioner": BLOCK,
            "reclaimPolicy": "Delete",
            "parameters": {
                "resturl": kube_heketi.url, "restuser": "admin",
                "restsecretnamespace": ns, "restsecretname": name, "hacount": "3",
            },
        },
    )  # fmt: skip
    claim = make_claim(current, "team-block", "db", "real-block")
    uid = claim["metadata"]["uid"]
    event = wait_event(
        current, "team-block", uid, "ProvisioningFailed", contains="fakeIQN", type_="Warning"
    )
    assert "not an iSCSI name" in event["message"]
    assert "secret" not in event["message"]  # the mock's CHAP password
    found = block_names(kube_heketi)
    assert f"pvc-{uid}" in found
    block = kube_heketi.get(f"/blockvolumes/{found[f'pvc-{uid}']}")
    assert block["blockvolume"]["username"] and len(block["blockvolume"]["hosts"]) == 3
    assert get_or_none(current, f"/api/v1/persistentvolumes/pvc-{uid}") is None
    secrets = current.get("/api/v1/namespaces/team-block/secrets")["items"]
    assert not [s for s in secrets if s["type"] == "kubernetes.io/iscsi-chap"]

    current.request("DELETE", claim_path("team-block", "db"), ok=(200,))
    wait_for(lambda: f"pvc-{uid}" not in block_names(kube_heketi), WAIT, "the sweep")
    wait_for(
        lambda: (
            get_or_none(
                current, f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}/configmaps/heketi-intent-{uid}"
            )
            is None
        ),
        WAIT,
        "the intent record to go",
    )


def test_real_api_server_accepts_our_iscsi_pv_and_chap_secret(current: RealKube) -> None:
    install_rbac(current)
    make_namespace(current, "team-shape")
    uid = str(uuid.uuid4())
    claim: dict[str, Any] = {
        "metadata": {"name": "db", "namespace": "team-shape", "uid": uid},
        "spec": {"accessModes": ["ReadWriteOnce"]},
    }
    volume = BlockVolumeInfo(
        id="b" * 32, name=f"pvc-{uid}", size=1, hosts=("192.0.2.11", "192.0.2.12"),
        iqn=f"iqn.2016-12.org.gluster-block:{uuid.uuid4()}", username=str(uuid.uuid4()),
        password=str(uuid.uuid4()), auth=True,
    )  # fmt: skip
    params = parse_block_parameters({"resturl": "http://heketi:8080"})
    pv = build_block_pv(
        claim=claim, storage_class={"metadata": {"name": "real-block"}}, params=params,
        provisioner_name=BLOCK, volume=volume, resturl="http://heketi:8080", chap=True,
    )  # fmt: skip
    current.request("POST", "/api/v1/persistentvolumes?dryRun=All", pv, ok=(201,))
    secret = build_chap_secret(claim, volume)
    current.request("POST", "/api/v1/namespaces/team-shape/secrets?dryRun=All", secret, ok=(201,))

    def allowed(verb: str) -> bool:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": f"system:serviceaccount:{CONTROLLER_NAMESPACE}:{SERVICE_ACCOUNT}",
                "resourceAttributes": {
                    "namespace": "team-shape", "verb": verb, "resource": "secrets",
                },
            },
        }  # fmt: skip
        answer = current.request(
            "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", review, ok=(201,)
        )
        return bool(answer["status"].get("allowed"))

    assert allowed("create") and allowed("delete") and allowed("get")
    assert not allowed("list") and not allowed("update") and not allowed("watch")

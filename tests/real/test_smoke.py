"""Smoke test of the real peers: the stack starts, the real PV binder binds a claim,
a ServiceAccount token authenticates under RBAC, and Heketi answers signed requests."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import yaml

from heketi_client import HeketiClient
from testbeds.peers import Peers, RealHeketi, RealKube

pytestmark = pytest.mark.timeout(300)

MADE_UP_PROVISIONER = "smoke.example.com/none"


def test_stack_binds_a_claim_and_heketi_answers(
    real_peers: Peers, real_kube: RealKube, real_heketi: RealHeketi
) -> None:
    kube = real_kube
    assert kube.server_version() == real_peers.kube_version(kube.version)

    ns = "smoke"
    kube.create(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
    )
    sc = f"smoke-{ns}"
    kube.create(
        "/apis/storage.k8s.io/v1/storageclasses",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": sc},
            "provisioner": MADE_UP_PROVISIONER,
            "reclaimPolicy": "Retain",
            "volumeBindingMode": "Immediate",
        },
    )
    kube.create(
        "/api/v1/persistentvolumes",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "smoke-pv"},
            "spec": {
                "capacity": {"storage": "2Gi"},
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": sc,
                "persistentVolumeReclaimPolicy": "Retain",
                "csi": {"driver": "smoke.example.com", "volumeHandle": "smoke-1"},
            },
        },
    )
    # The binder matches a claim against the PVs in its informer cache; a claim that
    # arrives before the PV event is only retried at the next claim resync (15 s by
    # default). Wait until the binder has seen the PV (it sets phase Available).
    kube.wait_for(
        lambda: (
            kube.get("/api/v1/persistentvolumes/smoke-pv")["status"].get("phase") == "Available"
        ),
        30,
        "PV Available (seen by the binder)",
    )
    kube.create(
        f"/api/v1/namespaces/{ns}/persistentvolumeclaims",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "claim"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": sc,
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )

    def bound() -> dict[str, Any] | None:
        pvc: dict[str, Any] = kube.get(f"/api/v1/namespaces/{ns}/persistentvolumeclaims/claim")
        if pvc["status"].get("phase") == "Bound" and pvc["spec"].get("volumeName"):
            return pvc
        return None

    pvc = kube.wait_for(bound, 60, "claim bound by the real PV binder")
    assert pvc["spec"]["volumeName"] == "smoke-pv"
    assert "kubernetes.io/pvc-protection" in pvc["metadata"].get("finalizers", [])
    pv = kube.get("/api/v1/persistentvolumes/smoke-pv")
    assert pv["status"]["phase"] == "Bound"
    assert pv["spec"]["claimRef"]["uid"] == pvc["metadata"]["uid"]

    # A ServiceAccount's token authenticates, and RBAC (no bindings) denies it.
    config = yaml.safe_load(kube.mint_serviceaccount_kubeconfig(ns, "tenant").read_text())
    token = config["users"][0]["user"]["token"]
    r = requests.get(
        f"{kube.server}/api/v1/namespaces/{ns}/pods",
        timeout=10,
        headers={"Authorization": f"Bearer {token}"},
        verify=str(kube.pki.ca),
    )
    assert r.status_code == 403, r.text
    assert f"system:serviceaccount:{ns}:tenant" in r.json()["message"]

    # Heketi: the greeting needs no token; /clusters needs a JWT with qsh.
    heketi = real_heketi
    assert "Hello from Heketi" in heketi.hello()
    wrong = heketi.request("GET", "/clusters", key="a-wrong-key-at-least-32-bytes-long")
    assert wrong.status_code == 401
    clusters = heketi.get("/clusters")["clusters"]
    assert len(clusters) == 1 and clusters == heketi.cluster_ids
    info = heketi.get(f"/clusters/{clusters[0]}")
    assert len(info["nodes"]) == 3
    client = HeketiClient(heketi.url, user="admin", key=heketi.admin_key)
    assert client.list_clusters() == clusters

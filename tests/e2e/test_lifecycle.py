"""The ordinary life of a claim through the running controller."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from provisioner.controller.keys import FINALIZER
from provisioner.gluster.annotations import ANN_GID, ANN_HEKETI_VOLUME_ID

if TYPE_CHECKING:
    from conftest import Cluster

NAMESPACE = "default"


def test_provision_bind_delete(cluster: Cluster) -> None:
    sc = cluster.storage_class()
    cluster.sim.reset_requests()
    cluster.sandbox.clear_request_log()
    started = time.monotonic()
    claim = cluster.claim(sc, size="3Gi")

    pv = cluster.bound_pv(claim)
    bound_after = time.monotonic() - started

    uid = claim["metadata"]["uid"]
    (volume,) = cluster.sim.volumes()
    assert pv["metadata"]["name"] == f"pvc-{uid}"
    assert pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID] == volume["id"]
    assert pv["metadata"]["annotations"][ANN_GID] == str(volume["gid"]) == "2000"
    assert FINALIZER in pv["metadata"]["finalizers"]
    assert pv["spec"]["capacity"]["storage"] == "3Gi"
    endpoints = cluster.get("endpoints", pv["spec"]["glusterfs"]["endpoints"], NAMESPACE)
    assert endpoints is not None
    heketi = cluster.heketi_counts()
    writes = [
        r
        for r in cluster.sandbox.request_log
        if r.verb in ("create", "update", "patch", "delete")
        and r.user_agent.startswith("heketi-provisioner")
        and r.resource != "persistentvolumeclaims"  # the test's own create
    ]
    print(f"\n[figures] Heketi requests for one claim: {dict(heketi)}")
    print(
        f"[figures] Kubernetes writes by the controller for one claim: "
        f"{sorted((r.verb, r.resource) for r in writes)}"
    )
    print(f"[figures] claim Bound after {bound_after:.3f}s")
    assert heketi["POST /volumes 202"] == 1
    assert heketi["GET /volumes/{id} 200"] == 1
    assert not any(k.startswith("GET /volumes 200") for k in heketi)
    # Exactly these, in this order: the intent record (a ConfigMap in the controller's
    # namespace) before anything else, the Endpoints and Service once Heketi named the
    # storage IPs, then the PV.
    assert [(r.verb, r.resource) for r in writes if r.resource != "events"] == [
        ("create", "configmaps"), ("create", "endpoints"), ("create", "services"),
        ("create", "persistentvolumes"),
    ]  # fmt: skip
    assert len([r for r in writes if r.resource == "events"]) <= 2

    cluster.delete_claim(claim)

    cluster.wait_for(lambda: cluster.get("persistentvolumes", pv["metadata"]["name"]) is None,
                     what="the PV to be deleted")  # fmt: skip
    assert cluster.sim.volumes() == []
    assert cluster.get("endpoints", pv["spec"]["glusterfs"]["endpoints"], NAMESPACE) is None
    assert cluster.get("services", pv["spec"]["glusterfs"]["endpoints"], NAMESPACE) is None


def test_retain_keeps_the_heketi_volume(cluster: Cluster) -> None:
    sc = cluster.storage_class(reclaim="Retain")
    claim = cluster.claim(sc)
    pv = cluster.bound_pv(claim)
    name = pv["metadata"]["name"]

    cluster.delete_claim(claim)

    cluster.wait_for(
        lambda: (
            ((cluster.get("persistentvolumes", name) or {}).get("status") or {}).get("phase")
            == "Released"
        ),
        what="the PV to be Released",
    )
    assert cluster.get("persistentvolumes", name) is not None
    assert len(cluster.sim.volumes()) == 1
    # Deleting the PV by hand lets it go (our finalizer is released) but keeps the backend.
    cluster.kube.delete("persistentvolumes", name)
    cluster.wait_for(lambda: cluster.get("persistentvolumes", name) is None, what="PV gone")
    assert len(cluster.sim.volumes()) == 1


def test_pv_deleted_directly_goes_through_the_finalizer(cluster: Cluster) -> None:
    sc = cluster.storage_class()
    claim = cluster.claim(sc)
    pv = cluster.bound_pv(claim)
    name = pv["metadata"]["name"]

    cluster.kube.delete("persistentvolumes", name)
    held = cluster.get("persistentvolumes", name)
    assert held is not None and held["metadata"].get("deletionTimestamp")
    assert len(cluster.sim.volumes()) == 1  # still in use by its claim
    cluster.delete_claim(claim)

    cluster.wait_for(lambda: cluster.get("persistentvolumes", name) is None, what="PV gone")
    assert cluster.sim.volumes() == []


def test_class_deleted_before_release_still_deletes(cluster: Cluster) -> None:
    sc = cluster.storage_class()
    claim = cluster.claim(sc)
    pv = cluster.bound_pv(claim)
    cluster.kube.delete("storageclasses", sc)

    cluster.delete_claim(claim)

    cluster.wait_for(
        lambda: cluster.get("persistentvolumes", pv["metadata"]["name"]) is None,
        what="PV gone",
    )
    assert cluster.sim.volumes() == []


def test_deleted_endpoints_are_repaired(cluster: Cluster) -> None:
    sc = cluster.storage_class()
    pv = cluster.bound_pv(cluster.claim(sc))
    name = pv["spec"]["glusterfs"]["endpoints"]
    original = cluster.get("endpoints", name, NAMESPACE)
    assert original is not None

    cluster.kube.delete("endpoints", name, NAMESPACE)

    def recreated() -> dict | None:
        found = cluster.get("endpoints", name, NAMESPACE)
        if found and found["metadata"]["uid"] != original["metadata"]["uid"]:
            return found
        return None

    repaired = cluster.wait_for(recreated, what="the Endpoints to be re-created")
    assert repaired["subsets"] == original["subsets"]


def test_claim_deleted_while_the_create_is_in_flight(cluster: Cluster) -> None:
    cluster.sim.set_latency({"volume_create": 1.0})
    sc = cluster.storage_class()
    claim = cluster.claim(sc)
    cluster.wait_for(
        lambda: cluster.heketi_counts()["POST /volumes 202"] == 1, what="the create to start"
    )
    assert cluster.sim.volumes() == []  # still in flight

    cluster.delete_claim(claim)

    pv_name = f"pvc-{claim['metadata']['uid']}"
    # The PV is still written, found Released (its claim is gone), and deleted.
    cluster.wait_for(
        lambda: cluster.heketi_counts()["DELETE /volumes/{id} 202"] == 1,
        what="the volume to be deleted",
    )
    cluster.wait_for(lambda: cluster.get("persistentvolumes", pv_name) is None, what="PV gone")
    assert cluster.sim.volumes() == []
    assert cluster.heketi_counts()["POST /volumes 202"] == 1


def test_secret_wins_over_restuserkey_and_restuserkey_works_alone(cluster: Cluster) -> None:
    with_both = cluster.storage_class(restuserkey="not-the-key")  # Secret has the right key
    alone = cluster.storage_class(secret=None, restuserkey="e2e-admin-key-0123456789abcdef")
    for sc in (with_both, alone):
        cluster.bound_pv(cluster.claim(sc))
    assert len(cluster.sim.volumes()) == 2

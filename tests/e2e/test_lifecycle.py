"""The ordinary life of a claim through the running controller."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from provisioner.annotations import ANN_GID, ANN_HEKETI_VOLUME_ID, FINALIZER

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
    assert {(r.verb, r.resource) for r in writes if r.resource != "events"} == {
        ("create", "endpoints"), ("create", "services"), ("create", "persistentvolumes"),
    }  # fmt: skip

    cluster.delete_claim(claim)

    cluster.wait_for(lambda: cluster.get("persistentvolumes", pv["metadata"]["name"]) is None,
                     what="the PV to be deleted")  # fmt: skip
    assert cluster.sim.volumes() == []
    assert cluster.get("endpoints", pv["spec"]["glusterfs"]["endpoints"], NAMESPACE) is None
    assert cluster.get("services", pv["spec"]["glusterfs"]["endpoints"], NAMESPACE) is None

"""Provisioning against the simulator: the happy path, its request budget, the endpoints."""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING

from provisioner.controller.contract import Outcome, ProvisionError
from provisioner.gluster.annotations import ANN_GID, ANN_HEKETI_VOLUME_ID, LABEL_PROVISIONED_FOR_PVC
from provisioner.gluster.intent import read_intent

if TYPE_CHECKING:
    from conftest import World

NAMESPACE = "default"
ADMIN_KEY = "admin-Key-7f3c9e1b"  # as in conftest.py

STORAGE_IPS = ["10.0.1.1", "10.0.1.2", "10.0.1.3"]


def endpoint_ips(world: World, name: str) -> list[str]:
    endpoints = world.sandbox.get_object("endpoints", NAMESPACE, name)
    assert endpoints is not None
    return sorted(a["ip"] for s in endpoints["subsets"] for a in s["addresses"])


def test_provision_creates_one_volume_within_the_request_budget(world: World) -> None:
    gluster = world.provisioner()
    sc = world.storage_class()
    claim = world.claim(sc, size="1500Mi")

    pv = gluster.provision(claim, sc)

    uid = claim["metadata"]["uid"]
    volumes = world.sim.volumes()
    assert len(volumes) == 1
    volume = volumes[0]
    assert volume["name"] == f"pvc-{uid}"
    assert volume["size"] == 2
    assert volume["gid"] == 2000
    assert pv["metadata"]["name"] == f"pvc-{uid}"
    assert pv["metadata"]["annotations"][ANN_GID] == "2000"
    assert pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID] == volume["id"]
    assert pv["spec"]["glusterfs"]["path"] == f"pvc-{uid}"
    assert pv["spec"]["capacity"]["storage"] == "2Gi"
    # Budget: the create, its polls, and the one GET the 303 leads to; before them,
    # once per server and five minutes, the nodes' storage addresses (a list of
    # clusters, one GET per cluster, one per node). Nothing else.
    counts = world.counts()
    polls = sum(n for key, n in counts.items() if key.startswith("GET /queue/{id}"))
    topology = counts.get("GET /clusters 200", 0) + counts.get("GET /clusters/{id} 200", 0)
    topology += counts.get("GET /nodes/{id} 200", 0)
    assert counts.get("POST /volumes 202") == 1
    assert counts.get("GET /volumes/{id} 200") == 1
    assert topology == 1 + 1 + 3  # one cluster of three nodes
    assert sum(counts.values()) - polls - topology == 2
    assert not any(key.startswith("GET /volumes ") for key in counts)  # never listed
    world.sim.reset_requests()
    gluster.provision(world.claim(sc), sc)
    assert not any("/nodes/" in key or "/clusters" in key for key in world.counts())


def test_endpoints_and_service_carry_the_storage_ips_and_our_label(world: World) -> None:
    gluster = world.provisioner()
    sc = world.storage_class(customepnameprefix="myep")
    claim = world.claim(sc)

    pv = gluster.provision(claim, sc)

    name = f"myep-{claim['metadata']['uid']}"
    assert pv["spec"]["glusterfs"]["endpoints"] == name
    assert endpoint_ips(world, name) == STORAGE_IPS
    service = world.sandbox.get_object("services", NAMESPACE, name)
    assert service is not None
    assert "selector" not in service["spec"]
    assert service["metadata"]["labels"][LABEL_PROVISIONED_FOR_PVC] == claim["metadata"]["name"]


def test_class_parameters_reach_the_heketi_request(world: World) -> None:
    gluster = world.provisioner()
    cluster = world.sim.cluster_ids()[0]
    sc = world.storage_class(
        volumetype="disperse:2:1",
        volumeoptions="client.ssl on, server.ssl on",
        clusterid=cluster,
        gidMin="5000",
        gidMax="5010",
        snapfactor="2",
        volumenameprefix="dept-a",
    )
    claim = world.claim(sc, size="4Gi")

    gluster.provision(claim, sc)

    (volume,) = world.sim.volumes()
    assert volume["durability"]["type"] == "disperse"
    assert volume["durability"]["disperse"] == {"data": 2, "redundancy": 1}
    assert volume["gid"] == 5000
    assert volume["cluster"] == cluster
    assert volume["snapshot"] == {"enable": True, "factor": 2}
    assert "client.ssl on" in volume["glustervolumeoptions"]
    meta = claim["metadata"]
    assert volume["name"] == f"dept-a_{NAMESPACE}_{meta['name']}_{meta['uid']}"


def test_gids_are_distinct_per_class_and_lowest_first(world: World) -> None:
    gluster = world.provisioner()
    first, second = world.storage_class(), world.storage_class()
    gids = []
    for sc in (first, first, second):
        pv = gluster.provision(world.claim(sc), sc)
        gids.append(int(pv["metadata"]["annotations"][ANN_GID]))
    assert gids == [2000, 2001, 2000]


def test_repeating_a_finished_provision_asks_heketi_nothing(world: World) -> None:
    """The controller may fail to write the PV and call again: reuse the record."""
    gluster = world.provisioner()
    sc = world.storage_class()
    claim = world.claim(sc)
    first = gluster.provision(claim, sc)
    before = world.heketi_requests()

    second = gluster.provision(claim, sc)

    assert second == first
    assert world.heketi_requests() == before
    assert len(world.sim.volumes()) == 1


def test_endpoints_failure_is_retried_without_a_second_volume(world: World) -> None:
    gluster = world.provisioner()
    sc = world.storage_class()
    claim = world.claim(sc)
    world.sandbox.faults.fail_next_writes("endpoints", count=1, status=500, message="etcd hiccup")

    try:
        gluster.provision(claim, sc)
    except ProvisionError as err:
        assert err.outcome is Outcome.RETRY
        assert "writing Endpoints" in err.message
        assert "etcd hiccup" in err.message
    else:
        raise AssertionError("the injected Endpoints failure was not reported")
    posts = world.counts().get("POST /volumes 202")

    # Retried as the controller would (more than once: an injected sandbox failure can
    # also upset the next request on the same connection).
    pv = world.provision_with_retries(gluster, claim, sc)

    assert world.counts().get("POST /volumes 202") == posts == 1
    assert len(world.sim.volumes()) == 1
    assert endpoint_ips(world, pv["spec"]["glusterfs"]["endpoints"]) == STORAGE_IPS


def test_stale_endpoints_are_replaced(world: World) -> None:
    gluster = world.provisioner()
    sc = world.storage_class()
    claim = world.claim(sc)
    name = f"glusterfs-dynamic-{claim['metadata']['uid']}"
    world.kube.create(
        "endpoints",
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "subsets": [{"addresses": [{"ip": "192.0.2.9"}], "ports": [{"port": 1}]}],
        },
        NAMESPACE,
    )

    gluster.provision(claim, sc)

    assert endpoint_ips(world, name) == STORAGE_IPS


def test_no_gid_left_in_the_range_is_reported_without_heketi(world: World) -> None:
    gluster = world.provisioner()
    sc = world.storage_class(gidMin="3000", gidMax="3000")
    gluster.provision(world.claim(sc), sc)
    before = world.heketi_requests()

    try:
        gluster.provision(world.claim(sc), sc)
    except ProvisionError as err:
        assert "3000" in err.message and "gidMin" in err.message
    else:
        raise AssertionError("a second volume got a GID outside the class range")
    assert world.heketi_requests() == before


def test_the_intent_record_is_in_our_namespace_before_heketi_is_asked(world: World) -> None:
    """Held at the Heketi create: a ConfigMap in the controller's namespace already
    says which claim, volume, server and GID (never the key); nothing is in the
    claim's namespace yet, which its tenant could have forged or could edit."""
    gluster = world.provisioner()
    secret = world.secret()
    sc = world.storage_class(secret=secret)
    claim = world.claim(sc)
    uid = claim["metadata"]["uid"]
    name = f"glusterfs-dynamic-{uid}"
    hold = world.sim.faults.hold_next("volume_create")
    worker = threading.Thread(target=gluster.provision, args=(claim, sc))
    worker.start()
    try:
        assert hold.wait_reached(10.0)
        records = world.records()
        assert world.sandbox.get_object("services", NAMESPACE, name) is None
        assert world.sandbox.get_object("endpoints", NAMESPACE, name) is None
    finally:
        hold.release()
        worker.join(30.0)
    assert [r["metadata"]["name"] for r in records] == [f"heketi-intent-{uid}"]
    intent = read_intent(records[0])
    assert intent is not None
    assert (intent.claim_uid, intent.claim_namespace, intent.claim_name, intent.class_name) == (
        uid, NAMESPACE, claim["metadata"]["name"], sc["metadata"]["name"],
    )  # fmt: skip
    assert (intent.rest_url, intent.volume_name, intent.gid, intent.provisioner) == (
        world.sim.url, f"pvc-{uid}", 2000, "gluster.org/heketi-test",
    )  # fmt: skip
    assert ADMIN_KEY not in json.dumps(records[0])
    assert world.sandbox.get_object("endpoints", NAMESPACE, name) is not None
    assert world.sandbox.get_object("services", NAMESPACE, name) is not None

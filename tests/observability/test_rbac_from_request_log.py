"""RBAC proven from traffic: what the controller sent to the API server is exactly what
manifests/rbac.yaml grants.

Representative flows run against the sandbox with leader election on: provision, bind,
delete, repair of a deleted Endpoints object, a bad claim re-examined after its class
changed (which folds a repeated event into a patch), the orphan sweep, and a clean
release of the Lease; and against a 1.37 sandbox, a claim grown (Heketi, the PV's
capacity, the claim's status subresource) and a claim cloned. Every request whose
user agent is the controller's becomes an RBAC tuple (scope, apiGroup, resource,
verb); non-resource URLs (``/version``, discovery) are granted to every authenticated
user by the default ``system:discovery`` role and are not ours to grant.
"""

from __future__ import annotations

import os
import threading
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from provisioner.app import leader_elector

if TYPE_CHECKING:
    from conftest import World

RBAC = Path(__file__).resolve().parents[2] / "manifests" / "rbac.yaml"
CONTROLLER_NAMESPACE = "heketi-provisioner"
Grant = tuple[str, str, str, str]
BLOCK = "gluster.org/glusterblock"

JUSTIFIED: set[Grant] = {
    # Re-read after a finalizer-patch conflict; the orphan sweep's last look for a PV.
    ("cluster", "", "persistentvolumes", "get"),
    # Correcting an existing Endpoints object whose addresses differ.
    ("cluster", "", "endpoints", "update"),
    # A retry reading back the intent record an earlier attempt wrote.
    (f"namespace:{CONTROLLER_NAMESPACE}", "", "configmaps", "get"),
}
"""Granted although no flow here sends it; each is marked "Justified:" in rbac.yaml."""


def granted() -> set[Grant]:
    found: set[Grant] = set()
    for doc in yaml.safe_load_all(RBAC.read_text()):
        if not doc or doc["kind"] not in ("ClusterRole", "Role"):
            continue
        scope = (
            "cluster"
            if doc["kind"] == "ClusterRole"
            else f"namespace:{doc['metadata']['namespace']}"
        )
        for rule in doc["rules"]:
            for group, resource, verb in product(
                rule["apiGroups"], rule["resources"], rule["verbs"]
            ):
                found.add((scope, group, resource, verb))
    return found


def used(records: list[Any]) -> set[Grant]:
    found: set[Grant] = set()
    for r in records:
        if not r.user_agent.startswith("heketi-provisioner/") or not r.resource:
            continue
        resource = f"{r.resource}/{r.subresource}" if r.subresource else r.resource
        # A namespaced Role only covers its namespace; everything else must be cluster-wide.
        scope = (
            f"namespace:{CONTROLLER_NAMESPACE}"
            if r.resource in ("leases", "configmaps") and r.namespace == CONTROLLER_NAMESPACE
            else "cluster"
        )
        found.add((scope, r.group, resource, r.verb))
    return found


def run_flows(world: World) -> None:
    controller = world.build(orphan_sweep_period=3600.0, namespace=CONTROLLER_NAMESPACE)
    stop, lost = threading.Event(), threading.Event()
    elector = leader_elector(controller, controller.settings, stop, lost)
    elector.start()
    world.wait_for(controller.ready, what="the elected controller to start")

    sc = world.storage_class()
    claim = world.claim(sc)
    pv = world.bound_pv(claim)  # provision + the binder's bind
    # The sweep retires the claim's intent record now that its PV exists.
    controller.sweep_orphans(controller.pvs.list(), controller.claims.list(),
                             controller.classes.list())  # fmt: skip

    endpoints = pv["spec"]["glusterfs"]["endpoints"]
    world.user.delete("endpoints", endpoints, "default")
    world.wait_for(lambda: world.find("endpoints", endpoints, "default"),
                   what="the Endpoints to be repaired")  # fmt: skip

    bad = world.storage_class(secret="no-such-secret")
    bad_claim = world.claim(bad)
    world.wait_for(
        lambda: any(e.get("type") == "Warning" and
                    (e.get("involvedObject") or {}).get("uid") == bad_claim["metadata"]["uid"]
                    for e in world.sandbox.list_objects("events", "default")),
        what="the Warning on the bad claim",
    )  # fmt: skip
    # A label change moves the class's resourceVersion: the claim is looked at afresh
    # and its (identical) events are bumped with a patch rather than created again.
    world.user.patch("storageclasses", bad, {"metadata": {"labels": {"touched": "yes"}}})
    world.wait_for(
        lambda: any(r.verb == "patch" and r.resource == "events"
                    for r in world.sandbox.request_log),
        what="a repeated event folded into a patch",
    )  # fmt: skip

    world.delete_claim_and_wait(claim, pv)

    # A block volume: its CHAP Secret is created in the claim's namespace, and deleted
    # with the volume.
    block_class = world.storage_class(
        secretNamespace=None, secretName=None, restsecretnamespace="default",
        restsecretname=world.secret(), provisioner=BLOCK,
    )  # fmt: skip
    block_claim = world.claim(block_class)
    block_pv = world.bound_pv(block_claim)
    world.delete_claim_and_wait(block_claim, block_pv)
    controller.sweep_orphans(controller.pvs.list(), controller.claims.list(),
                             controller.classes.list())  # fmt: skip

    controller.stop(grace=2.0)
    assert elector.release()


def run_resize_and_clone(world: World) -> None:
    controller = world.build(
        orphan_sweep_period=3600.0, namespace=CONTROLLER_NAMESPACE, assume_glusterfs_plugin=True
    )
    controller.start()
    sc = world.storage_class()
    world.user.patch("storageclasses", sc, {"allowVolumeExpansion": True})
    claim = world.claim(sc)
    world.bound_pv(claim)
    name = claim["metadata"]["name"]
    bigger = {"spec": {"resources": {"requests": {"storage": "2Gi"}}}}
    world.user.patch("persistentvolumeclaims", name, bigger, "default")
    world.wait_for(
        lambda: (
            (world.find("persistentvolumeclaims", name, "default") or {})
            .get("status", {})
            .get("capacity", {})
            .get("storage")
            == "2Gi"
        ),
        what="the claim grown",
    )
    clone = world.claim(sc, size="2Gi", dataSource={"kind": "PersistentVolumeClaim", "name": name})
    world.bound_pv(clone)
    controller.stop(grace=2.0)


def _traffic(world: World, flows: Any) -> set[Grant]:
    world.user.create("namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                     "metadata": {"name": CONTROLLER_NAMESPACE}})  # fmt: skip
    world.sandbox.clear_request_log()
    flows(world)
    assert os.environ["POD_NAMESPACE"] == CONTROLLER_NAMESPACE
    return used(world.sandbox.request_log)


@pytest.fixture
def traffic(world: World, current_world: World, monkeypatch: pytest.MonkeyPatch) -> set[Grant]:
    monkeypatch.setenv("POD_NAMESPACE", CONTROLLER_NAMESPACE)
    return _traffic(world, run_flows) | _traffic(current_world, run_resize_and_clone)


def test_manifests_grant_exactly_what_the_controller_uses(traffic: set[Grant]) -> None:
    grants = granted()
    assert traffic - grants == set(), "used but not granted"
    assert grants - traffic - JUSTIFIED == set(), "granted but never used"
    assert grants >= JUSTIFIED


def test_each_justified_grant_is_explained_in_the_manifest() -> None:
    text = RBAC.read_text()
    assert text.count("# Justified:") == len({(g[2], g[3]) for g in JUSTIFIED})
    for _, _, resource, verb in JUSTIFIED:
        assert f"Justified: {verb}" in text, (resource, verb)


def test_the_flows_covered_every_kind_of_object(traffic: set[Grant]) -> None:
    """Guards the test itself: a flow that silently did nothing would shrink the set."""
    resources = {g[2] for g in traffic}
    assert resources >= {"persistentvolumeclaims", "persistentvolumes", "storageclasses",
                         "secrets", "endpoints", "services", "events", "leases"}  # fmt: skip
    verbs = {(g[2], g[3]) for g in traffic}
    assert {("leases", "update"), ("events", "patch"), ("persistentvolumes", "delete"),
            ("endpoints", "create"), ("secrets", "create"),
            ("secrets", "delete")} <= verbs  # fmt: skip

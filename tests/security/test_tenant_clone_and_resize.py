"""What a tenant can do with cloning and resizing, done the way a tenant would.

A clone copies data: the attack is to make the controller copy a volume the tenant
may not read (another namespace's, one bound to another claim, an operator's static
volume) into a claim of its own. A resize spends space: the attack is to make it
grow a volume that is not the tenant's. The source volume of a clone and the volume
of a resize must come only from a PV we provisioned for exactly that claim (uid).

The API server here is 1.37 (resizes are left to kube-controller-manager up to
1.25), and the controller runs with --assume-glusterfs-plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.gluster.annotations import ANN_HEKETI_VOLUME_ID
from provisioner.sandbox.waiting import wait_for

from .conftest import PROVISIONER, TENANT, VICTIM, Obj, World

CLONE = "POST /volumes/{id}/clone"
EXPAND = "POST /volumes/{id}/expand"


@pytest.fixture
def current(tmp_path: Path) -> Iterator[World]:
    made = World(tmp_path, kube_version="1.37.2")
    try:
        yield made
    finally:
        made.close()


def _source(name: str, namespace: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"kind": "PersistentVolumeClaim", "name": name}
    if namespace:
        ref["namespace"] = namespace
    return ref


def _warning(world: World, namespace: str, claim: str) -> str:
    def look() -> str | None:
        found = world.get("persistentvolumeclaims", claim, namespace) or {}
        uid = (found.get("metadata") or {}).get("uid")
        for event in world.sandbox.list_objects("events", namespace):
            if (event.get("involvedObject") or {}).get("uid") == uid and event.get(
                "type"
            ) == "Warning":
                return str(event.get("message"))
        return None

    return wait_for(look, 20, f"a Warning on {namespace}/{claim}")


def _sent(world: World, route: str) -> int:
    return sum(1 for r in world.sim.requests if route in (r.route, f"{r.method} {r.route}"))


def _static_pv(world: World, name: str, storage_class: str, volume_id: str, claim: Obj) -> Obj:
    """An operator's static PV of a Heketi volume, pre-bound to a tenant's claim."""
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {ANN_HEKETI_VOLUME_ID: volume_id,
                                                   "pv.beta.kubernetes.io/gid": "2000"}},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": storage_class,
            "persistentVolumeReclaimPolicy": "Retain",
            "claimRef": {"namespace": TENANT, "name": claim["metadata"]["name"],
                         "uid": claim["metadata"]["uid"]},
            "glusterfs": {"endpoints": "operator-ep", "path": "operator-archive"},
        },
    }  # fmt: skip
    return world.admin.create("persistentvolumes", body)


def test_clone_of_another_namespaces_claim_is_refused(current: World) -> None:
    world = current
    sc = world.storage_class("gluster")
    world.start_controller("--assume-glusterfs-plugin")
    world.victim.claim("secrets-db", sc)
    world.bound_pv(VICTIM, "secrets-db")

    world.tenant.claim("copy", sc, dataSourceRef=_source("secrets-db", VICTIM))

    message = _warning(world, TENANT, "copy")
    assert "another namespace" in message, message
    assert _sent(world, CLONE) == 0


def test_clone_through_a_claim_pointing_at_someone_elses_pv_is_refused(current: World) -> None:
    """The tenant makes a claim whose spec.volumeName names the victim's PV, and even
    (as a tenant with rights on claim status would) marks it Bound; then clones it.
    The PV's claimRef uid is the victim's claim's, not the tenant's: no clone."""
    world = current
    sc = world.storage_class("gluster")
    world.start_controller("--assume-glusterfs-plugin")
    world.victim.claim("secrets-db", sc)
    victim_pv = world.bound_pv(VICTIM, "secrets-db")
    stolen = world.tenant.claim("stolen", sc, volumeName=victim_pv["metadata"]["name"])
    world.admin.patch(
        "persistentvolumeclaims",
        "stolen",
        {"status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}},
        TENANT,
        subresource="status",
    )
    assert (world.get("persistentvolumeclaims", "stolen", TENANT) or {})["status"]["phase"] == (
        "Bound"
    ), stolen

    world.tenant.claim("copy", sc, dataSource=_source("stolen"))

    message = _warning(world, TENANT, "copy")
    assert "not bound to a volume that" in message, message
    assert victim_pv["metadata"]["name"] not in message  # nothing learnt about the PV
    assert _sent(world, CLONE) == 0


def test_clone_of_an_operators_static_pv_is_refused(current: World) -> None:
    world = current
    sc = world.storage_class("gluster")
    world.start_controller("--assume-glusterfs-plugin")
    operator = world.operator_volume("operator-archive")
    claim = world.tenant.claim("archive", sc)
    _static_pv(world, "operator-archive", sc, operator.id, claim)
    world.bound_pv(TENANT, "archive")

    world.tenant.claim("copy", sc, dataSource=_source("archive"))

    message = _warning(world, TENANT, "copy")
    assert f"not bound to a volume that {PROVISIONER} provisioned" in message, message
    assert _sent(world, CLONE) == 0


def test_resize_of_an_operators_static_pv_does_not_grow_it(current: World) -> None:
    """The API server lets a claim of an expandable class grow whatever its PV is (a
    static PV too: checked against kube-apiserver 1.25 and 1.37). The operator's
    volume must not be grown for it."""
    world = current
    sc = world.storage_class("gluster", expandable=True)
    world.start_controller("--assume-glusterfs-plugin")
    operator = world.operator_volume("operator-archive")
    claim = world.tenant.claim("archive", sc)
    _static_pv(world, "operator-archive", sc, operator.id, claim)
    world.bound_pv(TENANT, "archive")
    own = world.tenant.claim("mine", sc)
    world.bound_pv(TENANT, "mine")

    grow = {"spec": {"resources": {"requests": {"storage": "50Gi"}}}}
    world.tenant.patch("persistentvolumeclaims", "archive", grow)
    # A claim of its own grown after it: once that one is done, the other was seen.
    world.tenant.patch("persistentvolumeclaims", "mine", {"spec": {"resources": {
        "requests": {"storage": "2Gi"}}}})  # fmt: skip

    def mine_grown() -> bool:
        found = world.get("persistentvolumeclaims", "mine", TENANT) or {}
        return found.get("status", {}).get("capacity", {}).get("storage") == "2Gi"

    wait_for(mine_grown, 20, "the tenant's own claim to grow")
    assert (world.heketi_volume(volume_id=operator.id) or {})["size"] == 1
    assert _sent(world, EXPAND) == 1, own

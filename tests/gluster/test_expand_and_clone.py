"""The backend's expand and clone against the Heketi simulator: never twice, whatever
answer went missing, and what a hostile Heketi answer can (not) make it do."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from provisioner.controller.contract import Outcome, ProvisionError
from provisioner.gluster.annotations import ANN_CLONE_OF, ANN_GID, ANN_HEKETI_VOLUME_ID

from .conftest import World

GIB = 2**30
QUEUE = "b" * 32


def _grown(world: World) -> int:
    return world.counts().get("POST /volumes/{id}/expand 202", 0)


def _size(world: World, volume_id: str) -> int:
    return int(next(v for v in world.sim.volumes() if v["id"] == volume_id)["size"])


def test_expand_compares_with_heketi_before_growing(world: World) -> None:
    gluster = world.provisioner()
    sc = world.storage_class()
    pv = gluster.provision(world.claim(sc), sc)
    volume_id = pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID]

    assert gluster.expand(pv, 3 * GIB) == "3Gi"
    # The same PV again (its capacity still says 1Gi, as after a kill before the PV
    # update): Heketi says 3 already, so nothing is sent.
    assert gluster.expand(pv, 3 * GIB) == "3Gi"
    assert gluster.expand(pv, 2 * GIB + 1) == "3Gi"
    assert _grown(world) == 1 and _size(world, volume_id) == 3


def test_a_lost_expand_answer_is_not_followed_by_a_second_expand(world: World) -> None:
    gluster = world.provisioner()
    sc = world.storage_class()
    pv = gluster.provision(world.claim(sc), sc)
    volume_id = pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID]
    world.sim.faults.lose_result_next("volume_expand")

    with pytest.raises(ProvisionError) as lost:
        gluster.expand(pv, 3 * GIB)
    assert lost.value.outcome is Outcome.RETRY
    assert gluster.expand(pv, 3 * GIB) == "3Gi"

    assert _size(world, volume_id) == 3
    assert _grown(world) == 1


@responses.activate
def test_a_heketi_that_under_reports_the_size_is_not_asked_again(world: World) -> None:
    """A hostile (or broken) Heketi answers every expand with the old size. Asking
    again would grow the volume again each time; the attempt stops instead."""
    gluster = world.provisioner()
    volume_id = "a" * 32
    url = "http://heketi.invalid:8080"
    info = {
        "id": volume_id, "name": "pvc-x", "size": 1, "cluster": "c" * 32,
        "durability": {"type": "none"}, "snapshot": {"enable": True, "factor": 1},
        "mount": {"glusterfs": {"hosts": ["192.0.2.1"], "device": "192.0.2.1:pvc-x",
                                "options": {"backup-volfile-servers": ""}}},
        "bricks": [], "blockinfo": {},
    }  # fmt: skip
    responses.get(f"{url}/volumes/{volume_id}", json=info)
    responses.post(
        f"{url}/volumes/{volume_id}/expand", status=202, headers={"Location": f"/queue/{QUEUE}"}
    )
    responses.get(f"{url}/queue/{QUEUE}", status=303, headers={"Location": f"/volumes/{volume_id}"})
    pv = {
        "metadata": {"name": "pvc-x", "annotations": {ANN_HEKETI_VOLUME_ID: volume_id,
                     "heketi-provisioner.gluster.org/resturl": url}},
        "spec": {"glusterfs": {"path": "pvc-x"}},
    }  # fmt: skip

    with pytest.raises(ProvisionError) as refused:
        gluster.expand(pv, 3 * GIB)

    assert refused.value.outcome is Outcome.WAIT_FOR_CHANGE
    assert "not asking again" in refused.value.message
    expands = [c for c in responses.calls if c.request.url.endswith("/expand")]
    assert len(expands) == 1
    assert json.loads(expands[0].request.body or b"{}") == {"expand_size": 2}


def _clone(world: World, gluster: Any, sc: dict[str, Any], source_pv: dict[str, Any]) -> Any:
    ref = {"kind": "PersistentVolumeClaim", "name": "src"}
    claim = world.claim(sc, size="2Gi", dataSource=ref)
    return claim, gluster.clone(claim, sc, source_pv)


def test_clone_keeps_the_source_gid_which_stays_held_until_both_are_gone(world: World) -> None:
    gluster = world.provisioner()
    sc = world.storage_class()
    name = sc["metadata"]["name"]
    source_pv = gluster.provision(world.claim(sc), sc)
    gid = int(source_pv["metadata"]["annotations"][ANN_GID])
    claim, pv = _clone(world, gluster, sc, source_pv)

    ann = pv["metadata"]["annotations"]
    assert int(ann[ANN_GID]) == gid
    assert ann[ANN_CLONE_OF] == source_pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID]
    clone_id = ann[ANN_HEKETI_VOLUME_ID]
    assert _size(world, clone_id) == 2
    assert next(v for v in world.sim.volumes() if v["id"] == clone_id)["name"] == (
        f"pvc-{claim['metadata']['uid']}"
    )

    gids = gluster.ledger.gids
    gluster.delete(pv)
    assert gids.is_used(name, gid), "the source still holds it"
    gluster.delete(source_pv)
    assert not gids.is_used(name, gid)


def test_prepare_counts_a_shared_gid_once_per_pv(world: World) -> None:
    gluster = world.provisioner()
    sc = world.storage_class()
    name = sc["metadata"]["name"]
    source_pv = gluster.provision(world.claim(sc), sc)
    _, pv = _clone(world, gluster, sc, source_pv)
    gid = int(pv["metadata"]["annotations"][ANN_GID])

    successor = world.provisioner()
    successor.prepare([source_pv, pv], [])
    successor.delete(source_pv)
    assert successor.ledger.gids.is_used(name, gid), "the clone still holds it"
    successor.delete(pv)
    assert not successor.ledger.gids.is_used(name, gid)


def test_prepare_counts_the_record_of_a_clone_without_pv_as_a_holder(world: World) -> None:
    """The clone's grow fails (its record written, no PV), a successor starts: the
    record holds the source's GID beside the source's PV, so deleting the source
    does not free it; the record's hold goes with the record (the sweep)."""
    gluster = world.provisioner()
    sc = world.storage_class()
    name = sc["metadata"]["name"]
    source_pv = gluster.provision(world.claim(sc), sc)
    gid = int(source_pv["metadata"]["annotations"][ANN_GID])
    world.sim.faults.fail_next("volume_expand", count=5, status=500, text="Injected")
    ref = {"kind": "PersistentVolumeClaim", "name": "src"}
    with pytest.raises(ProvisionError):
        gluster.clone(world.claim(sc, size="2Gi", dataSource=ref), sc, source_pv)

    successor = world.provisioner()
    successor.prepare([source_pv], [])
    assert successor.ledger.gids.holders(name, gid) == 2
    successor.delete(source_pv)
    assert successor.ledger.gids.is_used(name, gid), "the clone's record still holds it"


def test_a_clone_record_holds_the_gid_before_heketi_is_asked(world: World) -> None:
    """A source deleted while its clone is in flight leaves the GID to the clone."""
    gluster = world.provisioner()
    sc = world.storage_class()
    name = sc["metadata"]["name"]
    source_pv = gluster.provision(world.claim(sc), sc)
    gid = int(source_pv["metadata"]["annotations"][ANN_GID])
    world.sim.faults.fail_next("volume_clone", status=500, text="Injected")
    ref = {"kind": "PersistentVolumeClaim", "name": "src"}
    with pytest.raises(ProvisionError):  # the record is written, the clone refused
        gluster.clone(world.claim(sc, dataSource=ref), sc, source_pv)
    assert gluster.ledger.gids.holders(name, gid) == 2
    gluster.delete(source_pv)
    assert gluster.ledger.gids.is_used(name, gid)


def test_a_clone_grown_after_a_lost_answer_reads_the_size_first(world: World) -> None:
    gluster = world.provisioner()
    sc = world.storage_class()
    source_pv = gluster.provision(world.claim(sc), sc)
    world.sim.faults.lose_result_next("volume_expand", count=3)
    ref = {"kind": "PersistentVolumeClaim", "name": "src"}
    claim = world.claim(sc, size="10Gi", dataSource=ref)

    with pytest.raises(ProvisionError):
        gluster.clone(claim, sc, source_pv)
    pv = gluster.clone(claim, sc, source_pv)

    assert _size(world, pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID]) == 10
    assert _grown(world) == 1


def test_a_lost_clone_answer_is_found_by_name_not_cloned_again(world: World) -> None:
    gluster = world.provisioner()
    sc = world.storage_class()
    source_pv = gluster.provision(world.claim(sc), sc)
    world.sim.faults.lose_result_next("volume_clone")
    ref = {"kind": "PersistentVolumeClaim", "name": "src"}
    claim = world.claim(sc, size="1Gi", dataSource=ref)

    with pytest.raises(ProvisionError):
        gluster.clone(claim, sc, source_pv)
    pv = gluster.clone(claim, sc, source_pv)

    assert world.counts().get("POST /volumes/{id}/clone 202") == 1
    names = [v["name"] for v in world.sim.volumes()]
    assert names.count(f"pvc-{claim['metadata']['uid']}") == 1
    assert pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID] in {
        v["id"] for v in world.sim.volumes()
    }

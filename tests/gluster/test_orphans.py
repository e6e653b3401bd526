"""The orphan sweep against the Heketi simulator and the API sandbox.

The sweep starts from the intent records provision writes in the controller's
namespace before the Heketi create (one namespace per test: the API sandbox is
shared by the module). Time is a fake clock handed to the sweeper, so "after the
grace" is a number, not a sleep. Claims and PVs are handed to ``reconcile`` as the
controller's caches would.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from heketi_client import HeketiClient, VolumeCreateRequest
from provisioner.gluster.annotations import ANN_GID
from provisioner.gluster.provisioner import GlusterProvisioner
from provisioner.sandbox.waiting import wait_for

if TYPE_CHECKING:
    from conftest import World

ADMIN_KEY = "admin-Key-7f3c9e1b"  # as in conftest.py
NAMESPACE = "default"
GRACE = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def heketi(world: World) -> HeketiClient:
    """A client acting as another party (another cluster, an operator)."""
    return HeketiClient(world.sim.url, user="admin", key=ADMIN_KEY)


def sweeper_of(world: World, clock: Clock, grace: float = GRACE) -> GlusterProvisioner:
    gluster = world.provisioner(orphan_grace_seconds=grace, clock=clock)
    assert gluster.sweeper.grace_seconds == grace
    return gluster


def names(world: World) -> set[str]:
    return {v["name"] for v in world.sim.volumes()}


def claims(world: World) -> list[dict[str, Any]]:
    return world.sandbox.list_objects("persistentvolumeclaims", NAMESPACE)


def sweep(gluster: GlusterProvisioner, world: World, pvs: Sequence[dict[str, Any]] = ()) -> int:
    return gluster.reconcile(list(pvs), claims(world), [])


def delete_claim(world: World, claim: dict[str, Any]) -> None:
    """Delete and wait until it is gone (the protection finalizer goes asynchronously)."""
    name = claim["metadata"]["name"]
    world.kube.delete("persistentvolumeclaims", name, NAMESPACE)
    wait_for(
        lambda: world.sandbox.get_object("persistentvolumeclaims", NAMESPACE, name) is None,
        10.0,
        f"claim {name} to go",
    )


def endpoints_of(world: World, claim: dict[str, Any]) -> list[str]:
    name = f"glusterfs-dynamic-{claim['metadata']['uid']}"
    return [
        kind
        for kind in ("endpoints", "services")
        if world.sandbox.get_object(kind, NAMESPACE, name) is not None
    ]


def crash_orphan(world: World, sc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A previous process made the volume and died before the PV; then the claim went."""
    claim = world.claim(sc)
    pv = world.provisioner().provision(claim, sc)
    delete_claim(world, claim)
    return claim, pv


def test_a_crash_orphan_goes_on_the_second_sweep_after_the_grace(
    world: World, clock: Clock
) -> None:
    sc = world.storage_class()
    claim, pv = crash_orphan(world, sc)
    gid = int(pv["metadata"]["annotations"][ANN_GID])
    gluster = sweeper_of(world, clock)
    gluster.prepare([], [])
    assert gluster.ledger.gids.is_used(sc["metadata"]["name"], gid)  # from the record
    world.sim.reset_requests()

    assert sweep(gluster, world) == 0  # first sighting
    assert gluster.next_reconcile_in() == GRACE
    clock.now += GRACE
    assert gluster.next_reconcile_in() == 0
    assert sweep(gluster, world) == 1

    assert names(world) == set()
    assert endpoints_of(world, claim) == []
    assert not gluster.ledger.gids.is_used(sc["metadata"]["name"], gid)
    assert gluster.next_reconcile_in() is None
    # One list to find it by name, one GET for the id it had not seen, the delete.
    counts = world.counts()
    assert counts["GET /volumes 200"] == 1
    assert counts["GET /volumes/{id} 200"] == 1
    assert counts["DELETE /volumes/{id} 202"] == 1


def test_a_second_sweep_within_the_grace_keeps_the_volume(world: World, clock: Clock) -> None:
    sc = world.storage_class()
    claim, _ = crash_orphan(world, sc)
    gluster = sweeper_of(world, clock)

    sweep(gluster, world)
    clock.now += GRACE - 1
    assert sweep(gluster, world) == 0
    assert f"pvc-{claim['metadata']['uid']}" in names(world)
    clock.now += 1
    assert sweep(gluster, world) == 1
    assert names(world) == set()


def test_even_without_a_grace_the_first_sighting_never_deletes(world: World, clock: Clock) -> None:
    sc = world.storage_class()
    crash_orphan(world, sc)
    gluster = sweeper_of(world, clock, grace=0.0)

    assert sweep(gluster, world) == 0
    assert len(names(world)) == 1
    assert sweep(gluster, world) == 1
    assert names(world) == set()


def test_another_clusters_volume_without_a_record_is_never_touched(
    world: World, heketi: HeketiClient, clock: Clock
) -> None:
    """One Heketi, two Kubernetes clusters: the other one's ``pvc-<uid>`` volumes look
    exactly like ours, but no record in our API server names them."""
    gluster = sweeper_of(world, clock, grace=0.0)
    world.storage_class()
    foreign = {
        heketi.create_volume(VolumeCreateRequest(size=1, name=name)).name
        for name in (f"pvc-{uuid.uuid4()}", f"app_default_c_{uuid.uuid4()}", "heketidbstorage")
    }
    world.sim.reset_requests()

    for _ in range(3):
        assert sweep(gluster, world) == 0
        clock.now += GRACE
    assert names(world) == foreign
    assert world.counts() == {}  # no record, no candidate: Heketi is not even asked


def test_no_candidate_costs_no_heketi_request(world: World, clock: Clock) -> None:
    gluster = sweeper_of(world, clock, grace=0.0)
    sc = world.storage_class()
    pending = world.claim(sc)
    gluster.provision(pending, sc)  # volume made, PV not written, claim still there
    pvs = [gluster.provision(world.claim(sc), sc) for _ in range(3)]
    for pv in pvs:  # bound claims deleted: their PVs account for the volumes
        name = pv["spec"]["claimRef"]["name"]
        world.kube.delete("persistentvolumeclaims", name, NAMESPACE)
    world.sim.reset_requests()

    for _ in range(3):
        assert sweep(gluster, world, pvs) == 0
    assert world.counts() == {}
    assert len(names(world)) == 4


def test_a_record_whose_create_failed_just_loses_its_record_and_gid(
    world: World, clock: Clock
) -> None:
    gluster = sweeper_of(world, clock, grace=0.0)
    sc = world.storage_class()
    claim = world.claim(sc)
    world.sim.faults.fail_async_next("volume_create", text="brick mount failed")
    with pytest.raises(Exception, match="brick mount failed"):
        gluster.provision(claim, sc)
    assert len(world.records()) == 1  # the record, written first
    assert endpoints_of(world, claim) == []  # written only once a volume exists
    assert gluster.ledger.gids.is_used(sc["metadata"]["name"], 2000)
    delete_claim(world, claim)
    world.sim.reset_requests()

    sweep(gluster, world)
    assert sweep(gluster, world) == 0  # no volume was reclaimed

    assert world.records() == []
    assert not gluster.ledger.gids.is_used(sc["metadata"]["name"], 2000)
    assert world.counts() == {}  # this process saw the clean failure: nothing to ask


def test_a_stranger_looks_a_record_up_by_name_and_finds_nothing(world: World, clock: Clock) -> None:
    """The record's process died before its create; a new process cannot know that."""
    sc = world.storage_class()
    claim = world.claim(sc)
    world.sim.faults.fail_async_next("volume_create", text="brick mount failed")
    with pytest.raises(Exception, match="brick mount failed"):
        world.provisioner().provision(claim, sc)
    delete_claim(world, claim)
    gluster = sweeper_of(world, clock, grace=0.0)
    world.sim.reset_requests()

    sweep(gluster, world)
    assert sweep(gluster, world) == 0

    assert endpoints_of(world, claim) == []
    assert world.counts() == {"GET /volumes 200": 1}


def test_live_claims_and_pvs_keep_their_volumes(world: World, clock: Clock) -> None:
    gluster = sweeper_of(world, clock, grace=0.0)
    sc = world.storage_class()
    pending = world.claim(sc)
    bound = world.claim(sc)
    gluster.provision(pending, sc)
    pv = gluster.provision(bound, sc)
    delete_claim(world, bound)  # the claim is gone, but a PV names the volume

    for _ in range(3):
        assert sweep(gluster, world, [pv]) == 0
    assert len(names(world)) == 2


def test_caches_that_lag_are_checked_against_the_api_server(world: World, clock: Clock) -> None:
    """The cache says the claim is gone and no PV exists; the API server disagrees."""
    gluster = sweeper_of(world, clock, grace=0.0)
    sc = world.storage_class()
    live = world.claim(sc)
    gluster.provision(live, sc)
    written = world.claim(sc)
    pv = gluster.provision(written, sc)
    world.kube.create("persistentvolumes", pv)
    delete_claim(world, written)

    for _ in range(3):
        assert gluster.reconcile([], [], []) == 0
    assert len(names(world)) == 2
    unfinalized = {"metadata": {"finalizers": None}}
    world.kube.patch("persistentvolumes", pv["metadata"]["name"], unfinalized)
    world.kube.delete("persistentvolumes", pv["metadata"]["name"])


def test_a_provision_in_flight_in_this_process_is_not_raced(world: World, clock: Clock) -> None:
    gluster = sweeper_of(world, clock, grace=0.0)
    sc = world.storage_class()
    claim = world.claim(sc)
    # Heketi creates the volume, the answer is held: the provision is mid-flight.
    hold = world.sim.faults.hold_next("volume_create", after_effect=True)
    worker = threading.Thread(target=gluster.provision, args=(claim, sc))
    worker.start()
    try:
        assert hold.wait_reached(10.0)
        name = f"pvc-{claim['metadata']['uid']}"
        wait_for(lambda: name in names(world), 10.0, "the Heketi volume")
        assert claim["metadata"]["uid"] in gluster.ledger.attempts.in_flight()
        delete_claim(world, claim)
        for _ in range(3):
            assert sweep(gluster, world) == 0
        assert name in names(world)
    finally:
        hold.release()
        worker.join(30.0)
    assert not worker.is_alive()
    assert gluster.ledger.attempts.in_flight() == set()


def test_a_retain_class_keeps_its_volume_and_warns_once(world: World, clock: Clock) -> None:
    """A Released PV of a Retain class, deleted by its operator, leaves exactly such a
    record, and its data is meant to stay."""
    gluster = sweeper_of(world, clock, grace=0.0)
    retain = world.storage_class(reclaim="Retain")
    claim, _ = crash_orphan(world, retain)
    world.sim.reset_requests()

    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            assert sweep(gluster, world) == 0
    assert f"pvc-{claim['metadata']['uid']}" in names(world)
    assert endpoints_of(world, claim) == ["endpoints", "services"]
    kept = [e for e in logs if e["event"] == "orphan.kept"]
    assert len(kept) == 1
    assert kept[0]["log_level"] == "warning"
    assert kept[0]["claim_uid"] == claim["metadata"]["uid"]
    assert "retains volumes" in kept[0]["reason"]
    assert world.counts() == {}
    # Kept, it is tried again at the regular period, not at once in a loop.
    assert gluster.next_reconcile_in() is None


def test_a_gid_a_pv_of_the_class_holds_is_not_released(world: World, clock: Clock) -> None:
    gluster = sweeper_of(world, clock, grace=0.0)
    sc = world.storage_class()
    _, pv = crash_orphan(world, sc)
    gid = pv["metadata"]["annotations"][ANN_GID]
    holder = {  # a (bad) PV of that class that holds the same gid
        "metadata": {"name": "holder", "annotations": {ANN_GID: gid}},
        "spec": {"storageClassName": sc["metadata"]["name"]},
    }
    gluster.prepare([holder], [])

    sweep(gluster, world, [holder])
    assert sweep(gluster, world, [holder]) == 1

    assert names(world) == set()
    assert gluster.ledger.gids.is_used(sc["metadata"]["name"], int(gid))


def test_the_key_never_reaches_the_log(
    world: World, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    sc = world.storage_class()
    claim, _ = crash_orphan(world, sc)
    gluster = sweeper_of(world, clock, grace=0.0)
    with caplog.at_level(logging.DEBUG), structlog.testing.capture_logs() as logs:
        sweep(gluster, world)
        world.sim.faults.fail_next("GET /volumes", count=2, status=500, text="boom")
        assert sweep(gluster, world) == 0  # a failed look-up: logged, no raise
        assert sweep(gluster, world) == 1
    assert [e["event"] for e in logs if e["event"].startswith("orphan_sweep.")] == [
        "orphan_sweep.lookup_failed"
    ]
    (reclaimed,) = [e for e in logs if e["event"] == "orphan.reclaimed"]
    assert reclaimed["heketi_volume"] == f"pvc-{claim['metadata']['uid']}"
    assert reclaimed["server"] == world.sim.url
    heketi_lines = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert caplog.records  # heketi_client's own lines were captured too
    assert ADMIN_KEY not in repr(logs) + heketi_lines


def test_a_negative_grace_is_refused(world: World) -> None:
    with pytest.raises(ValueError, match="grace"):
        world.provisioner(orphan_grace_seconds=-1)


def test_a_record_whose_pv_exists_is_retired_without_asking_heketi(
    world: World, clock: Clock
) -> None:
    """Once the PV holds the GID and names the volume the record has done its job; the
    sweep removes it so the controller's namespace only holds claims in flight."""
    gluster = sweeper_of(world, clock, grace=0.0)
    sc = world.storage_class()
    pv = gluster.provision(world.claim(sc), sc)
    assert len(world.records()) == 1
    world.sim.reset_requests()

    assert sweep(gluster, world, [pv]) == 0
    assert world.records() == []
    assert world.counts() == {}
    assert len(names(world)) == 1


def _forge_record(world: World, claim: dict[str, Any], **changes: str) -> None:
    """Rewrite the claim's record as someone with write access to our namespace could."""
    name = f"heketi-intent-{claim['metadata']['uid']}"
    record = world.sandbox.get_object("configmaps", world.control_ns, name)
    assert record is not None
    record["data"].update(changes)
    world.kube.replace("configmaps", record, world.control_ns)


@pytest.mark.parametrize("field", ["volumeName", "resturl", "storageClass"])
def test_a_record_that_disagrees_with_its_class_is_kept(
    world: World, heketi: HeketiClient, clock: Clock, field: str
) -> None:
    """The class, not the record, says where the volume is and what it is called: a
    record naming another volume, another server or a class that is not ours (edited
    by hand, or by a compromised admin tool) makes the sweep keep everything."""
    gluster = sweeper_of(world, clock, grace=0.0)
    sc = world.storage_class()
    other = world.kube.create(
        "storageclasses",
        {
            "metadata": {"name": f"not-ours-{uuid.uuid4().hex[:8]}"},
            "provisioner": "example.com/other",
            "parameters": dict(sc["parameters"]),
        },
    )
    victim = heketi.create_volume(VolumeCreateRequest(size=1, name="operators-own")).name
    claim = world.claim(sc)
    world.sim.faults.fail_async_next("volume_create", text="brick mount failed")
    with pytest.raises(Exception, match="brick mount failed"):
        gluster.provision(claim, sc)
    forged = {
        "volumeName": victim,
        "resturl": "http://127.0.0.1:9",
        "storageClass": other["metadata"]["name"],
    }[field]
    _forge_record(world, claim, **{field: forged})
    delete_claim(world, claim)
    world.sim.reset_requests()

    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            assert sweep(gluster, world) == 0
            clock.now += GRACE
    assert victim in names(world)
    assert world.counts() == {}
    assert len(world.records()) == 1
    assert [e["claim_uid"] for e in logs if e["event"] == "orphan.kept"] == [
        claim["metadata"]["uid"]
    ]


def test_an_unreadable_volume_is_skipped_but_keeps_an_orphan_record(
    world: World, heketi: HeketiClient, clock: Clock
) -> None:
    """A hostile or broken Heketi answers one volume's GET with garbage. The index
    skips it (other lookups go on), but the sweep cannot know that volume is not
    the orphan's, so it keeps the record and its GID instead of leaking the volume."""
    gluster = sweeper_of(world, clock, grace=0.0)
    sc = world.storage_class()
    claim, _pv = crash_orphan(world, sc)
    heketi.create_volume(VolumeCreateRequest(size=1, name="operators-own"))
    gid = 2000
    assert gluster.ledger.gids.is_used(sc["metadata"]["name"], gid) is False  # fresh process
    gluster.prepare([], [])
    world.sim.faults.fail_next("GET /volumes/{id}", count=2, status=200, text='{"id": 7}')

    for _ in range(2):
        assert sweep(gluster, world) == 0
        clock.now += GRACE
    index = gluster.ledger.indexes.for_server(world.sim.url)
    assert len(index.unreadable) == 2  # both volumes were new to this index
    assert len(world.records()) == 1
    assert gluster.ledger.gids.is_used(sc["metadata"]["name"], gid)
    assert f"pvc-{claim['metadata']['uid']}" in names(world)

    assert sweep(gluster, world) == 1  # Heketi answers properly again: reclaimed
    assert index.unreadable == frozenset()
    assert names(world) == {"operators-own"}
    assert world.records() == []

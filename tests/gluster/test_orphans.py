"""The orphan sweep against the Heketi simulator and the API sandbox.

Time is a fake clock handed to the sweeper, so "after the grace" is a number, not a
sleep. Claims and PVs are handed to ``reconcile`` as the controller's caches would.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from heketi_client import HeketiClient, VolumeCreateRequest, VolumeInfo
from provisioner.gluster import GlusterProvisioner
from provisioner.orphans import OrphanSweeper

if TYPE_CHECKING:
    from conftest import World

ADMIN_KEY = "admin-Key-7f3c9e1b"  # as in conftest.py
GRACE = 60.0


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
    """A client acting as another party (a dead process, another tenant)."""
    return HeketiClient(world.sim.url, user="admin", key=ADMIN_KEY)


def sweeper_of(world: World, clock: Clock) -> GlusterProvisioner:
    gluster = world.provisioner(orphan_grace_seconds=GRACE, clock=clock)
    assert gluster.orphans.grace_seconds == GRACE
    return gluster


def make_volume(heketi: HeketiClient, name: str, gid: int | None = None) -> VolumeInfo:
    return heketi.create_volume(VolumeCreateRequest(size=1, name=name, gid=gid))


def names(world: World) -> set[str]:
    return {v["name"] for v in world.sim.volumes()}


def classes(world: World) -> list[dict[str, Any]]:
    """This test's classes (the API sandbox is shared by the module, the simulator not)."""
    return [
        sc
        for sc in world.sandbox.list_objects("storageclasses")
        if sc["parameters"]["resturl"] == world.sim.url
    ]


def test_an_orphan_goes_on_the_second_sweep_after_the_grace_not_before(
    world: World, heketi: HeketiClient, clock: Clock
) -> None:
    gluster = sweeper_of(world, clock)
    world.storage_class()
    orphan = make_volume(heketi, f"pvc-{uuid.uuid4()}")

    assert gluster.reconcile([], [], classes(world)) == 0  # first sighting
    clock.now += GRACE * 2
    assert orphan.name in names(world)  # one sweep is never enough, however long ago
    assert gluster.reconcile([], [], classes(world)) == 1
    assert orphan.name not in names(world)
    assert world.counts().get("DELETE /volumes/{id} 202") == 1


def test_a_second_sweep_within_the_grace_keeps_the_volume(
    world: World, heketi: HeketiClient, clock: Clock
) -> None:
    gluster = sweeper_of(world, clock)
    world.storage_class()
    orphan = make_volume(heketi, f"pvc-{uuid.uuid4()}")

    gluster.reconcile([], [], classes(world))
    clock.now += GRACE - 1
    assert gluster.reconcile([], [], classes(world)) == 0
    assert orphan.name in names(world)
    clock.now += 1
    assert gluster.reconcile([], [], classes(world)) == 1
    assert orphan.name not in names(world)


def test_even_without_a_grace_the_first_sighting_never_deletes(
    world: World, heketi: HeketiClient, clock: Clock
) -> None:
    gluster = world.provisioner(orphan_grace_seconds=0.0, clock=clock)
    world.storage_class()
    orphan = make_volume(heketi, f"pvc-{uuid.uuid4()}")

    assert gluster.reconcile([], [], classes(world)) == 0
    assert orphan.name in names(world)
    assert gluster.reconcile([], [], classes(world)) == 1
    assert orphan.name not in names(world)


def test_volumes_of_live_claims_and_of_pvs_are_kept(world: World, clock: Clock) -> None:
    gluster = sweeper_of(world, clock)
    sc = world.storage_class()
    pending = world.claim(sc)
    bound = world.claim(sc)
    gluster.provision(pending, sc)  # volume made; its PV never written, claim still there
    pv = gluster.provision(bound, sc)  # the claim is gone, but a PV names the volume

    for _ in range(3):
        assert gluster.reconcile([pv], [pending], classes(world)) == 0
        clock.now += GRACE * 2
    assert names(world) == {f"pvc-{pending['metadata']['uid']}", pv["spec"]["glusterfs"]["path"]}


def test_a_pv_naming_the_volume_only_by_path_keeps_it(
    world: World, heketi: HeketiClient, clock: Clock
) -> None:
    """An operator recovering a volume writes a static PV with just the path."""
    gluster = sweeper_of(world, clock)
    world.storage_class()
    volume = make_volume(heketi, f"pvc-{uuid.uuid4()}")
    static_pv = {
        "metadata": {"name": "recovered"},
        "spec": {"glusterfs": {"endpoints": "glusterfs-cluster", "path": volume.name}},
    }
    for _ in range(3):
        assert gluster.reconcile([static_pv], [], classes(world)) == 0
        clock.now += GRACE * 2
    assert volume.name in names(world)


def test_foreign_volumes_are_never_touched_and_fetched_only_once(
    world: World, heketi: HeketiClient, clock: Clock
) -> None:
    gluster = sweeper_of(world, clock)
    world.storage_class()
    foreign = {
        make_volume(heketi, name).name
        for name in ("heketidbstorage", "vol_5f0e", "other-tenant_data", f"app-{uuid.uuid4()}")
    }
    world.sim.reset_requests()

    for _ in range(3):
        assert gluster.reconcile([], [], classes(world)) == 0
        clock.now += GRACE * 2
    assert names(world) == foreign
    counts = world.counts()  # each volume fetched once, then remembered
    assert counts == {"GET /volumes 200": 3, "GET /volumes/{id} 200": len(foreign)}


def test_a_provision_in_flight_in_this_process_is_not_raced(world: World, clock: Clock) -> None:
    gluster = sweeper_of(world, clock)
    sc = world.storage_class()
    claim = world.claim(sc)
    # Heketi creates the volume, the answer is held: the provision is mid-flight.
    hold = world.sim.faults.hold_next("volume_create", after_effect=True)
    worker = threading.Thread(target=gluster.provision, args=(claim, sc))
    worker.start()
    try:
        assert hold.wait_reached(10.0)
        name = f"pvc-{claim['metadata']['uid']}"
        world_wait(lambda: name in names(world))
        assert claim["metadata"]["uid"] in gluster.in_flight_claims()
        for _ in range(3):  # the claim is not handed in: as if deleted meanwhile
            assert gluster.reconcile([], [], classes(world)) == 0
            clock.now += GRACE * 2
        assert name in names(world)
    finally:
        hold.release()
        worker.join(30.0)
    assert not worker.is_alive()
    assert gluster.in_flight_claims() == set()


def world_wait(predicate: Any, timeout: float = 10.0) -> None:
    """Wait on a condition with a deadline (the pause only paces the loop)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        threading.Event().wait(0.02)


def test_one_list_per_sweep_when_every_volume_is_referenced(world: World, clock: Clock) -> None:
    gluster = sweeper_of(world, clock)
    sc = world.storage_class()
    claims = [world.claim(sc) for _ in range(5)]
    pvs = [gluster.provision(c, sc) for c in claims]
    world.sim.reset_requests()

    assert gluster.reconcile(pvs, [], classes(world)) == 0

    assert world.counts() == {"GET /volumes 200": 1}


def test_k_unreferenced_volumes_cost_k_gets_once_then_k_deletes(
    world: World, heketi: HeketiClient, clock: Clock
) -> None:
    gluster = sweeper_of(world, clock)
    sc = world.storage_class()
    pvs = [gluster.provision(world.claim(sc), sc) for _ in range(3)]
    orphans = [make_volume(heketi, f"pvc-{uuid.uuid4()}") for _ in range(4)]
    world.sim.reset_requests()

    gluster.reconcile(pvs, [], classes(world))
    assert world.counts() == {"GET /volumes 200": 1, "GET /volumes/{id} 200": 4}
    world.sim.reset_requests()
    clock.now += GRACE
    assert gluster.reconcile(pvs, [], classes(world)) == 4

    counts = world.counts()
    assert counts["GET /volumes 200"] == 1
    assert counts["DELETE /volumes/{id} 202"] == 4
    assert "GET /volumes/{id} 200" not in counts  # what the first sweep saw is remembered
    assert not names(world) & {o.name for o in orphans}


def test_an_index_built_at_start_saves_the_gets(world: World, clock: Clock) -> None:
    """Volumes the provisioner's index already knows are judged without a GET."""
    sc = world.storage_class()
    pending = world.claim(sc)
    world.provisioner().provision(pending, sc)  # a previous process
    world.kube.delete("persistentvolumeclaims", pending["metadata"]["name"], "default")
    gluster = sweeper_of(world, clock)
    other = world.claim(sc)
    gluster.prepare([], [other])  # a claim pending at start: the index gets built
    world.sim.reset_requests()

    gluster.reconcile([], [other], classes(world))
    clock.now += GRACE
    assert gluster.reconcile([], [other], classes(world)) == 1

    counts = world.counts()
    assert counts["GET /volumes 200"] == 2
    assert "GET /volumes/{id} 200" not in counts


def test_a_retain_class_on_the_server_keeps_unreferenced_volumes(
    world: World, heketi: HeketiClient, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A Released PV of a Retain class, deleted by its operator, leaves exactly such a
    volume, and its data is meant to stay."""
    gluster = sweeper_of(world, clock)
    world.storage_class()
    world.storage_class(reclaim="Retain")
    prefixed = world.storage_class(volumenameprefix="keep")
    kept = make_volume(heketi, f"pvc-{uuid.uuid4()}")
    reclaimed = make_volume(heketi, f"keep_default_claim-x_{uuid.uuid4()}")
    unknown_prefix = make_volume(heketi, f"elsewhere_default_claim-y_{uuid.uuid4()}")
    assert prefixed["reclaimPolicy"] == "Delete"
    world.sim.reset_requests()

    with caplog.at_level(logging.WARNING, logger="provisioner.orphans"):
        for _ in range(3):
            gluster.reconcile([], [], classes(world))
            clock.now += GRACE
    assert kept.name in names(world)
    assert unknown_prefix.name in names(world)
    assert reclaimed.name not in names(world)
    warnings = [r.getMessage() for r in caplog.records if "keeping Heketi volume" in r.getMessage()]
    assert len(warnings) == 2  # once per volume, not once per sweep
    assert world.counts()["GET /volumes/{id} 200"] == 3  # each fetched once


def test_the_gid_of_a_reclaimed_volume_goes_back_to_its_class(world: World, clock: Clock) -> None:
    gluster = sweeper_of(world, clock)
    sc = world.storage_class()
    class_name = sc["metadata"]["name"]
    gone = world.claim(sc)
    kept_pv = gluster.provision(world.claim(sc), sc)
    pv = gluster.provision(gone, sc)  # the PV is never written; the claim is deleted
    gid = int(pv["metadata"]["annotations"]["pv.beta.kubernetes.io/gid"])
    assert gluster.gids.is_used(class_name, gid)

    gluster.reconcile([kept_pv], [], classes(world))
    clock.now += GRACE
    assert gluster.reconcile([kept_pv], [], classes(world)) == 1

    assert not gluster.gids.is_used(class_name, gid)
    assert gluster.attempt_gids() == {(class_name, gid - 1)}
    fresh = gluster.provision(world.claim(sc), sc)
    assert fresh["metadata"]["annotations"]["pv.beta.kubernetes.io/gid"] == str(gid)


def test_a_gid_another_volume_holds_is_not_released(
    world: World, heketi: HeketiClient, clock: Clock
) -> None:
    gluster = sweeper_of(world, clock)
    sc = world.storage_class()
    class_name = sc["metadata"]["name"]
    pending = world.claim(sc)
    make_volume(heketi, f"pvc-{pending['metadata']['uid']}", gid=2500)
    orphan = make_volume(heketi, f"pvc-{uuid.uuid4()}", gid=2500)  # a collision: keep it
    gluster.gids.observe(class_name, 2500)

    gluster.reconcile([], [pending], classes(world))
    clock.now += GRACE
    assert gluster.reconcile([], [pending], classes(world)) == 1

    assert orphan.name not in names(world)
    assert gluster.gids.is_used(class_name, 2500)


def test_the_key_never_reaches_the_log(
    world: World, heketi: HeketiClient, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    gluster = sweeper_of(world, clock)
    world.storage_class()
    world.storage_class(reclaim="Retain", volumenameprefix="r")
    make_volume(heketi, f"pvc-{uuid.uuid4()}")
    make_volume(heketi, f"r_default_c_{uuid.uuid4()}")
    with caplog.at_level(logging.DEBUG):
        gluster.reconcile([], [], classes(world))
        clock.now += GRACE
        world.sim.faults.fail_next("GET /volumes", count=2, status=500, text="boom")
        gluster.reconcile([], [], classes(world))  # a failed list: logged, no raise
        assert gluster.reconcile([], [], classes(world)) == 1
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "reclaimed orphaned Heketi volume pvc-" in text
    assert world.sim.url in text
    assert ADMIN_KEY not in text


def test_no_class_of_ours_means_no_heketi_request(world: World, clock: Clock) -> None:
    gluster = sweeper_of(world, clock)
    world.sim.reset_requests()
    foreign_class = {
        "metadata": {"name": "not-ours"},
        "provisioner": "example.com/other",
        "parameters": {"resturl": world.sim.url},
    }
    assert gluster.reconcile([], [], [foreign_class]) == 0
    assert world.counts() == {}


def test_a_negative_grace_is_refused(world: World) -> None:
    with pytest.raises(ValueError, match="grace"):
        OrphanSweeper(world.provisioner(), grace_seconds=-1)

"""A retry finds the volume an earlier attempt created: no duplicates, GIDs kept."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from heketi_client import HeketiClient, VolumeCreateRequest
from provisioner.controller.contract import Outcome, ProvisionError
from provisioner.gluster.annotations import ANN_GID, ANN_HEKETI_VOLUME_ID
from provisioner.gluster.provisioner import GlusterProvisioner

if TYPE_CHECKING:
    from conftest import World

    from provisioner.sandbox.heketi import HeketiSimulator


ADMIN_KEY = "admin-Key-7f3c9e1b"  # as in conftest.py


def fail_once(world: World, gluster: GlusterProvisioner, claim: dict, sc: dict) -> ProvisionError:
    with pytest.raises(ProvisionError) as caught:
        gluster.provision(claim, sc)
    assert caught.value.outcome is Outcome.RETRY
    return caught.value


@pytest.mark.parametrize(
    "inject",
    [
        pytest.param(lambda sim: sim.faults.lose_result_next("volume_create"), id="lost-result"),
        pytest.param(
            lambda sim: sim.faults.drop_connection_next("volume_create", after_effect=True),
            id="dropped-after-effect",
        ),
    ],
)
def test_retry_after_an_unknown_outcome_finds_the_volume(
    world: World, inject: Callable[[HeketiSimulator], None]
) -> None:
    gluster = world.provisioner()
    sc = world.storage_class()
    other = world.claim(sc)
    gluster.provision(other, sc)  # so the index has something else in it too
    claim = world.claim(sc)
    inject(world.sim)

    error = fail_once(world, gluster, claim, sc)
    assert "checks what Heketi did" in error.message
    pv = gluster.provision(claim, sc)

    names = sorted(v["name"] for v in world.sim.volumes())
    assert names == sorted(f"pvc-{c['metadata']['uid']}" for c in (other, claim))
    mine = next(v for v in world.sim.volumes() if v["name"] == pv["spec"]["glusterfs"]["path"])
    assert pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID] == mine["id"]
    assert pv["metadata"]["annotations"][ANN_GID] == str(mine["gid"]) == "2001"
    counts = world.counts()
    assert counts.get("POST /volumes 202", 0) + counts.get("POST /volumes dropped", 0) == 2
    assert counts.get("GET /volumes 200") == 1  # one list to look, no more


def test_a_claim_first_seen_after_start_goes_straight_to_create(world: World) -> None:
    gluster = world.provisioner()
    gluster.prepare([], [])
    sc = world.storage_class()
    for _ in range(3):
        gluster.provision(world.claim(sc), sc)
    assert "GET /volumes 200" not in world.counts()


def test_a_new_process_finds_the_volume_of_a_claim_pending_at_start(world: World) -> None:
    """The first process created the volume and died before the PV was written."""
    sc = world.storage_class()
    claim = world.claim(sc)
    world.provisioner().provision(claim, sc)  # PV never written: the process "died"
    (volume,) = world.sim.volumes()
    world.sim.reset_requests()

    second = world.provisioner()
    second.prepare([], [claim])
    pv = second.provision(claim, sc)

    assert len(world.sim.volumes()) == 1
    assert pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID] == volume["id"]
    assert pv["metadata"]["annotations"][ANN_GID] == str(volume["gid"])
    assert "POST /volumes 202" not in world.counts()


def test_gids_of_unrecorded_volumes_are_not_handed_out_again(world: World) -> None:
    """Without the index, a new claim would get gid 2000 again: the orphan's gid."""
    sc = world.storage_class()
    pending = world.claim(sc)
    world.provisioner().provision(pending, sc)  # gid 2000, PV never written

    second = world.provisioner()
    second.prepare([], [pending])
    fresh = second.provision(world.claim(sc), sc)  # before the pending claim's retry

    assert fresh["metadata"]["annotations"][ANN_GID] == "2001"
    adopted = second.provision(pending, sc)
    assert adopted["metadata"]["annotations"][ANN_GID] == "2000"
    assert len(world.sim.volumes()) == 2


def test_heketi_down_during_prepare_defers_the_index_to_first_use(world: World) -> None:
    sc = world.storage_class()
    pending = world.claim(sc)
    world.provisioner().provision(pending, sc)
    second = world.provisioner()
    world.sim.down()
    try:
        second.prepare([], [pending])  # must not raise
    finally:
        world.sim.up()

    fresh = second.provision(world.claim(sc), sc)

    assert fresh["metadata"]["annotations"][ANN_GID] == "2001"
    assert second.provision(pending, sc)["metadata"]["annotations"][ANN_GID] == "2000"


def test_an_existing_record_makes_a_stranger_look_before_creating(world: World) -> None:
    """Another process wrote the intent record and made the volume; this one has no
    memory of the claim: the Service it cannot create tells it to look."""
    sc = world.storage_class()
    claim = world.claim(sc)
    world.provisioner().provision(claim, sc)
    (volume,) = world.sim.volumes()
    world.sim.reset_requests()

    stranger = world.provisioner()  # no prepare
    pv = stranger.provision(claim, sc)

    assert len(world.sim.volumes()) == 1
    assert pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID] == volume["id"]
    assert pv["metadata"]["annotations"][ANN_GID] == str(volume["gid"])
    assert "POST /volumes 202" not in world.counts()
    assert world.counts().get("GET /volumes 200") == 1


def test_name_already_in_use_with_another_gid_is_refused_not_adopted(world: World) -> None:
    """A volume of the claim's name exists with a GID the claim's record does not hold
    (made outside this controller, or by a Heketi that lies): it is not bound, not
    deleted, and no second volume is made; the event names the field."""
    sc = world.storage_class()
    claim = world.claim(sc)
    made = HeketiClient(world.sim.url, user="admin", key=ADMIN_KEY).create_volume(
        VolumeCreateRequest(size=1, name=f"pvc-{claim['metadata']['uid']}", gid=2345)
    )

    with pytest.raises(ProvisionError) as caught:
        world.provisioner().provision(claim, sc)

    assert caught.value.outcome is Outcome.WAIT_FOR_CHANGE
    assert "its gid is not the recorded 2000" in caught.value.message
    assert "2345" not in caught.value.message  # another volume's GID is not told
    assert [v["id"] for v in world.sim.volumes()] == [made.id]  # kept, and no second one
    assert world.counts().get("POST /volumes 500") == 1  # the "already in use" answer


def test_failed_async_create_releases_the_gid_and_the_retry_creates(world: World) -> None:
    gluster = world.provisioner()
    sc = world.storage_class()
    claim = world.claim(sc)
    world.sim.faults.fail_async_next("volume_create", text="brick mount failed")

    error = fail_once(world, gluster, claim, sc)
    assert "brick mount failed" in error.message
    assert world.sim.volumes() == []
    pv = gluster.provision(claim, sc)

    assert pv["metadata"]["annotations"][ANN_GID] == "2000"
    assert len(world.sim.volumes()) == 1
    assert "GET /volumes 200" not in world.counts()  # a clean failure needs no look-up


def test_prepare_counts_gids_of_existing_pvs_per_class(world: World) -> None:
    sc = world.storage_class()
    name = sc["metadata"]["name"]
    pvs = [
        {
            "metadata": {"name": f"pv-{gid}", "annotations": {ANN_GID: str(gid)}},
            "spec": {"storageClassName": name},
        }
        for gid in (2000, 2001, 2003)
    ]
    gluster = world.provisioner()
    gluster.prepare(pvs, [])

    gids = [
        gluster.provision(world.claim(sc), sc)["metadata"]["annotations"][ANN_GID] for _ in range(2)
    ]
    assert gids == ["2002", "2004"]


def test_a_gid_recorded_for_a_create_still_in_flight_is_not_handed_out(world: World) -> None:
    """A dead process's create still runs in Heketi (its list hides it): the record in
    the controller's namespace, read by prepare, holds the GID; prepare asks Heketi
    nothing."""
    sc = world.storage_class()
    first = world.claim(sc)
    hold = world.sim.faults.hold_next("volume_create")
    dying_outcome: list[BaseException] = []

    def provision_until_cut_off() -> None:  # its connection is dropped below
        try:
            world.provisioner().provision(first, sc)
        except ProvisionError as exc:
            dying_outcome.append(exc)

    dying = threading.Thread(target=provision_until_cut_off)
    dying.start()
    try:
        assert hold.wait_reached(10.0)
        world.sim.reset_requests()
        second = world.provisioner()
        second.prepare([], [])
        assert world.counts() == {}
        fresh = second.provision(world.claim(sc), sc)
    finally:
        hold.release(proceed=False)
        dying.join(30.0)
    assert fresh["metadata"]["annotations"][ANN_GID] == "2001"
    assert "may or may not have been applied" in str(dying_outcome[0])


def test_an_early_slot_is_given_back_once_whether_released_early_or_not() -> None:
    from provisioner.gluster.pool import HeketiPool

    pool = HeketiPool(concurrency=1)
    with pool.early_slot("http://h:8080") as operation_ended:
        operation_ended()
        with pool.early_slot("http://h:8080/"):  # the one slot is free again
            pass
        operation_ended()  # a second call gives nothing back twice
    semaphore = pool._semaphore("http://h:8080")
    assert semaphore.acquire(blocking=False)
    assert not semaphore.acquire(blocking=False)  # still exactly one slot
    semaphore.release()

"""GIDs around clones, the way a tenant would play it: a clone keeps its source's GID
(Heketi copies it), so the GID has two holders, and deleting the source must never
free it for the next claim of the class while the clone still has it, whether the
clone is in flight, failing, done, or the controller restarted in between.

Hole 3 of issue 23: at start a clone's intent record was not counted as a second
holder, and a source deleted during a clone released its GID before the clone shared
it; shown as: the clone's grow fails, the controller restarts, the tenant deletes the
source, and the next claim of the class gets the clone's GID. The protection must
also be lifted: once the clone goes too, the GID is free again.

The class's GIDs start at 2000, so the source gets 2000.
"""

from __future__ import annotations

from .conftest import CONTROLLER_NAMESPACE, TENANT, World

SOURCE_GID = 2000
CLONE_OF_SOURCE = {"kind": "PersistentVolumeClaim", "name": "source"}


def _claim_uid(world: World, name: str) -> str:
    return str((world.get("persistentvolumeclaims", name, TENANT) or {})["metadata"]["uid"])


def _delete_source(world: World) -> None:
    """The tenant deletes the source claim; its PV (reclaim Delete) and volume go."""
    pv = world.bound_pv(TENANT, "source")["metadata"]["name"]
    world.tenant.delete("persistentvolumeclaims", "source")
    world.gone("persistentvolumes", pv)


def _record_gone(world: World, claim_uid: str) -> None:
    world.gone("configmaps", f"heketi-intent-{claim_uid}", CONTROLLER_NAMESPACE)


def test_a_failing_clone_keeps_its_gid_across_a_restart(world: World) -> None:
    sc = world.storage_class("gluster")
    world.start_controller()
    world.tenant.claim("source", sc)
    assert world.gid_of(TENANT, "source") == SOURCE_GID
    world.sim.faults.fail_next("volume_expand", count=10_000, status=500, text="Injected")
    world.tenant.claim("copy", sc, size="5Gi", dataSource=CLONE_OF_SOURCE)
    copy_uid = _claim_uid(world, "copy")
    world.warning_or_pv(TENANT, "copy")  # cloned; the grow fails and is retried

    # The new process cannot get back to the clone before the source goes: the lookup
    # of its volume by name (which must come first: the record exists) fails.
    world.sim.faults.fail_next("GET /volumes", count=10_000, status=500, text="Injected")
    world.restart_controller()
    _delete_source(world)
    world.tenant.claim("next", sc)

    assert world.gid_of(TENANT, "next") != SOURCE_GID, "the clone's GID was handed out again"

    # Lifted after the failure: the clone's claim goes, and with it its hold.
    world.sim.faults.clear()
    world.tenant.delete("persistentvolumeclaims", "copy")
    _record_gone(world, copy_uid)
    world.tenant.claim("later", sc)
    assert world.gid_of(TENANT, "later") == SOURCE_GID  # lowest free again: not leaked


def test_a_source_deleted_while_its_clone_is_in_flight_keeps_the_gid_held(world: World) -> None:
    sc = world.storage_class("gluster")
    world.start_controller()
    world.tenant.claim("source", sc)
    assert world.gid_of(TENANT, "source") == SOURCE_GID
    held = world.sim.faults.hold_next("volume_clone")
    world.tenant.claim("copy", sc, dataSource=CLONE_OF_SOURCE)
    copy_uid = _claim_uid(world, "copy")
    assert held.wait_reached(30), "the clone was never sent"

    _delete_source(world)  # while Heketi holds the clone
    world.tenant.claim("next", sc)
    try:
        assert world.gid_of(TENANT, "next") != SOURCE_GID, "the clone's GID was handed out"
    finally:
        held.release()  # the source is gone: Heketi answers 404, the clone fails

    message, pv = world.warning_or_pv(TENANT, "copy")
    assert not pv and "nothing to clone" in message, message
    # Lifted after the failure, once the clone's claim goes.
    world.tenant.delete("persistentvolumeclaims", "copy")
    _record_gone(world, copy_uid)
    world.tenant.claim("later", sc)
    assert world.gid_of(TENANT, "later") == SOURCE_GID


def test_a_done_clone_keeps_the_gid_after_a_restart_until_it_goes_too(world: World) -> None:
    sc = world.storage_class("gluster")
    world.start_controller()
    world.tenant.claim("source", sc)
    world.tenant.claim("copy", sc, dataSource=CLONE_OF_SOURCE)
    assert world.gid_of(TENANT, "copy") == world.gid_of(TENANT, "source") == SOURCE_GID

    world.restart_controller()
    _delete_source(world)
    world.tenant.claim("next", sc)
    assert world.gid_of(TENANT, "next") != SOURCE_GID

    copy_pv = world.bound_pv(TENANT, "copy")["metadata"]["name"]
    world.tenant.delete("persistentvolumeclaims", "copy")
    world.gone("persistentvolumes", copy_pv)
    world.tenant.claim("later", sc)
    assert world.gid_of(TENANT, "later") == SOURCE_GID

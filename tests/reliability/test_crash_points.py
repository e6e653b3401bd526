"""SIGKILL at every step of provisioning and deletion, then restart and converge.

Each step is reached deterministically: a fault hook holds the one request that marks
the step (the Heketi create, the Endpoints write, the PV write, the finalizer patch...)
and signals when it arrives. The controller process is killed while it waits there;
the held request is then either dropped ("lost in transit") or carried out after its
client died (a request Heketi or the API server had already received), and a fresh
process must finish the work with no leak, no duplicate and no GID reused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import World

CLAIMS = 3  # one is held at the step; the others are somewhere else in their flow


@dataclass(frozen=True)
class Step:
    id: str
    arm: Callable[[World], Any]  # returns the Hold
    proceed: bool  # after the kill: carry the held request out, or drop it


PROVISION_STEPS = [
    # The intent record (a ConfigMap in our namespace) is written first: lost, or
    # saved unanswered.
    Step(
        "intent-lost",
        lambda w: w.sandbox.faults.hold_next_write("configmaps", verbs={"create"}),
        False,
    ),
    Step(
        "intent-saved",
        lambda w: w.sandbox.faults.hold_next_write(
            "configmaps", verbs={"create"}, after_effect=True
        ),
        True,
    ),
    # Heketi never saw the create / saw it after the client died.
    Step("create-sent-lost", lambda w: w.sim.faults.hold_next("volume_create"), False),
    Step("create-sent-applied", lambda w: w.sim.faults.hold_next("volume_create"), True),
    # Heketi accepted (202) and runs the create; the answer never reached the client.
    Step(
        "create-accepted",
        lambda w: w.sim.faults.hold_next("volume_create", after_effect=True),
        True,
    ),
    # The Heketi operation completed; Endpoints not written yet.
    Step(
        "create-completed",
        lambda w: w.sandbox.faults.hold_next_write("endpoints", verbs={"create"}),
        False,
    ),
    # Endpoints written (after the volume), the PV not: create sent but not applied.
    Step(
        "endpoints-written",
        lambda w: w.sandbox.faults.hold_next_write("persistentvolumes", verbs={"create"}),
        False,
    ),
    # PV saved; the controller never learnt it.
    Step(
        "pv-saved",
        lambda w: w.sandbox.faults.hold_next_write(
            "persistentvolumes", verbs={"create"}, after_effect=True
        ),
        True,
    ),
]

DELETE_STEPS = [
    Step("delete-sent-lost", lambda w: w.sim.faults.hold_next("volume_delete"), False),
    Step("delete-sent-applied", lambda w: w.sim.faults.hold_next("volume_delete"), True),
    Step(
        "delete-accepted",
        lambda w: w.sim.faults.hold_next("volume_delete", after_effect=True),
        True,
    ),
    # Heketi volume gone; Endpoints/Service not yet deleted.
    Step(
        "heketi-volume-gone",
        lambda w: w.sandbox.faults.hold_next_write("endpoints", verbs={"delete"}),
        False,
    ),
    # Heketi volume and endpoints gone; our finalizer still on the PV.
    Step(
        "before-finalizer-removal",
        lambda w: w.sandbox.faults.hold_next_write("persistentvolumes", verbs={"patch"}),
        False,
    ),
    Step(
        "finalizer-removed",
        lambda w: w.sandbox.faults.hold_next_write(
            "persistentvolumes", verbs={"patch"}, after_effect=True
        ),
        True,
    ),
    # Finalizer removed; the PV delete itself never arrived.
    Step(
        "before-pv-delete",
        lambda w: w.sandbox.faults.hold_next_write("persistentvolumes", verbs={"delete"}),
        False,
    ),
]


def _kill_at(world: World, step: Step, act: Callable[[], None]) -> None:
    """Arm the hold, do ``act``, kill the controller once the hold is reached, let the
    held request go its way, start a new controller."""
    controller = world.controllers[0]
    hold = step.arm(world)
    act()
    assert hold.wait_reached(60), f"step {step.id} never reached"
    controller.kill()
    hold.release(proceed=step.proceed)
    controller.start()


@pytest.mark.parametrize("step", PROVISION_STEPS, ids=lambda s: s.id)
def test_kill_during_provisioning(world: World, step: Step) -> None:
    world.controller().start()
    sc = world.storage_class()

    _kill_at(world, step, lambda: [world.claim(sc) for _ in range(CLAIMS)])

    report = world.converge()
    assert report.pvs == CLAIMS
    assert world.heketi_counts()["POST /volumes 202"] <= CLAIMS + (not step.proceed)


@pytest.mark.parametrize("step", DELETE_STEPS, ids=lambda s: s.id)
def test_kill_during_deletion(world: World, step: Step) -> None:
    world.controller().start()
    sc = world.storage_class()
    names = [world.claim(sc)["metadata"]["name"] for _ in range(CLAIMS)]
    world.converge()

    _kill_at(world, step, lambda: [world.delete_claim(n) for n in names])

    report = world.converge()
    assert report.pvs == 0 and world.sim.volumes() == []


def test_claim_deleted_while_down_mid_provision(world: World) -> None:
    """The Heketi volume exists, no PV does, and the claim goes while no controller
    runs: only the intent record on the claim's Service still names the volume; the
    successor's orphan sweep reclaims it (after its short grace)."""
    controller = world.controller().start()
    sc = world.storage_class()
    hold = world.sandbox.faults.hold_next_write("persistentvolumes", verbs={"create"})
    doomed = world.claim(sc)["metadata"]["name"]
    assert hold.wait_reached(60)
    controller.kill()
    hold.release(proceed=False)
    assert len(world.sim.volumes()) == 1
    world.delete_claim(doomed)
    survivor = world.claim(sc)["metadata"]["name"]

    controller.start()

    world.bound_pv(survivor)
    world.converge()  # volume, Endpoints, Service of the deleted claim all gone


def test_bound_claim_deleted_while_down(world: World) -> None:
    controller = world.controller().start()
    sc = world.storage_class()
    names = [world.claim(sc)["metadata"]["name"] for _ in range(CLAIMS)]
    world.converge()
    controller.kill()
    world.delete_claim(names[0])
    world.sandbox.wait_idle()

    controller.start()

    world.converge()
    assert len(world.sim.volumes()) == CLAIMS - 1


@pytest.mark.parametrize("down_while_deleting", [False, True], ids=["running", "down"])
def test_pv_deleted_directly(world: World, down_while_deleting: bool) -> None:
    """``kubectl delete pv`` on a bound volume: it waits (our finalizer) until its
    claim goes, then everything is cleaned up, with or without a restart between."""
    controller = world.controller().start()
    sc = world.storage_class()
    name = world.claim(sc)["metadata"]["name"]
    keep = world.claim(sc)["metadata"]["name"]
    pv = world.bound_pv(name)
    world.converge()
    if down_while_deleting:
        controller.kill()
    world.kube.delete("persistentvolumes", pv["metadata"]["name"])
    assert world.get("persistentvolumes", pv["metadata"]["name"]) is not None  # finalizers
    if down_while_deleting:
        controller.start().wait_started()
    world.converge()  # still bound and whole: the PV is in use
    assert len(world.sim.volumes()) == 2

    world.delete_claim(name)

    world.converge()
    assert world.get("persistentvolumes", pv["metadata"]["name"]) is None
    assert [v["name"] for v in world.sim.volumes()] == [f"pvc-{world.expected[keep]}"]


def test_create_still_in_flight_when_the_successor_starts(world: World) -> None:
    """The dead process's create is still running in Heketi (invisible in its volume
    list) while the new process hands out GIDs: the intent record, written on the
    claim's Service before that create, holds its GID for the successor.

    To make the order deterministic, the successor's own first attempts for that claim
    fail cleanly (500), so it backs off for seconds, and a new claim is served in
    between.
    """
    controller = world.controller().start()
    sc = world.storage_class()
    world.sim.set_latency({"volume_create": 3600.0})
    world.claim(sc)
    world.wait_for(lambda: world.heketi_counts()["POST /volumes 202"] == 1, 60, "the create")
    controller.kill()
    world.sim.set_latency(0.0)
    world.sim.faults.fail_next("volume_create", count=3, status=500, text="try later")

    controller.start().wait_started()
    world.wait_for(lambda: world.heketi_counts()["POST /volumes 500"] == 3, 60, "3 failures")
    late = world.claim(sc)["metadata"]["name"]
    world.bound_pv(late)
    assert world.sim.complete_pending() == 1

    world.converge()

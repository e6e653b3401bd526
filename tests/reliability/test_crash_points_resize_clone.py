"""SIGKILL at every step of a resize and of a clone, then restart and converge.

As in test_crash_points: a fault hook holds the one request that marks the step, the
controller process is killed while it waits there, the held request is dropped or
carried out after its client died, and a fresh process must finish the work.

Resize: Heketi's expand takes an increment, so the danger is growing twice. The
volume must end exactly at the requested size whatever the step, and the claim must
show it. Clone: Heketi never checks clone names, so the danger is a second clone.
There must be exactly one volume per claim, the clone bound to its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .test_crash_points import Step, _kill_at

if TYPE_CHECKING:
    from conftest import World

CURRENT = "1.37.2"  # 1.25's kube-controller-manager grows glusterfs PVs itself
ARGS = ["--assume-glusterfs-plugin"]
VOLUME_ID = "gluster.kubernetes.io/heketi-volume-id"

RESIZE_STEPS = [
    Step("expand-sent-lost", lambda w: w.sim.faults.hold_next("volume_expand"), False),
    Step("expand-sent-applied", lambda w: w.sim.faults.hold_next("volume_expand"), True),
    Step(
        "expand-accepted",
        lambda w: w.sim.faults.hold_next("volume_expand", after_effect=True),
        True,
    ),
    # Heketi grew the volume; the PV's capacity not written / written unanswered.
    Step(
        "pv-capacity-lost",
        lambda w: w.sandbox.faults.hold_next_write("persistentvolumes", verbs={"patch"}),
        False,
    ),
    Step(
        "pv-capacity-saved",
        lambda w: w.sandbox.faults.hold_next_write(
            "persistentvolumes", verbs={"patch"}, after_effect=True
        ),
        True,
    ),
    # The PV says 3Gi; the claim's status does not yet.
    Step(
        "claim-status-lost",
        lambda w: w.sandbox.faults.hold_next_write(
            "persistentvolumeclaims/status", verbs={"patch"}
        ),
        False,
    ),
]

CLONE_STEPS = [
    Step(
        "clone-intent-lost",
        lambda w: w.sandbox.faults.hold_next_write("configmaps", verbs={"create"}),
        False,
    ),
    Step("clone-sent-lost", lambda w: w.sim.faults.hold_next("volume_clone"), False),
    Step("clone-sent-applied", lambda w: w.sim.faults.hold_next("volume_clone"), True),
    Step(
        "clone-accepted",
        lambda w: w.sim.faults.hold_next("volume_clone", after_effect=True),
        True,
    ),
    # Cloned; the grow to the larger request is under way: never seen by Heketi,
    # carried out after the client died, or done with its answer lost.
    Step("clone-grow-sent-lost", lambda w: w.sim.faults.hold_next("volume_expand"), False),
    Step("clone-grow-sent-applied", lambda w: w.sim.faults.hold_next("volume_expand"), True),
    Step(
        "clone-grow-accepted",
        lambda w: w.sim.faults.hold_next("volume_expand", after_effect=True),
        True,
    ),
    Step(
        "clone-endpoints-lost",
        lambda w: w.sandbox.faults.hold_next_write("endpoints", verbs={"create"}),
        False,
    ),
    Step(
        "clone-pv-saved",
        lambda w: w.sandbox.faults.hold_next_write(
            "persistentvolumes", verbs={"create"}, after_effect=True
        ),
        True,
    ),
]


@pytest.fixture
def current(make_world: Any) -> World:
    world: World = make_world(kube_version=CURRENT)
    return world


def _size(world: World, volume_id: str) -> int:
    return int(next(v for v in world.sim.volumes() if v["id"] == volume_id)["size"])


@pytest.mark.parametrize("step", RESIZE_STEPS, ids=lambda s: s.id)
def test_kill_during_resize(current: World, step: Step) -> None:
    world = current
    world.controller(args=ARGS).start()
    sc = world.storage_class(expandable=True)
    name = world.claim(sc)["metadata"]["name"]
    volume_id = world.bound_pv(name)["metadata"]["annotations"][VOLUME_ID]
    world.converge()

    _kill_at(
        world,
        step,
        lambda: world.kube.patch(
            "persistentvolumeclaims",
            name,
            {"spec": {"resources": {"requests": {"storage": "3Gi"}}}},
            "default",
        ),
    )

    def grown() -> bool:
        claim = world.get("persistentvolumeclaims", name, "default") or {}
        return (claim.get("status") or {}).get("capacity", {}).get("storage") == "3Gi"

    world.wait_for(grown, 60, "the claim to show 3Gi")
    world.converge()
    assert _size(world, volume_id) == 3  # grown once, never twice
    pv = world.bound_pv(name)
    assert pv["spec"]["capacity"]["storage"] == "3Gi"
    assert world.heketi_counts()["POST /volumes/{id}/expand 202"] <= 1 + (not step.proceed)


@pytest.mark.parametrize("step", CLONE_STEPS, ids=lambda s: s.id)
def test_kill_during_clone(current: World, step: Step) -> None:
    world = current
    world.controller(args=ARGS).start()
    sc = world.storage_class()
    source = world.claim(sc)["metadata"]["name"]
    world.bound_pv(source)
    world.converge()

    clone: dict[str, str] = {}

    def act() -> None:
        ref = {"kind": "PersistentVolumeClaim", "name": source}
        made = world.claim(sc, size="2Gi", dataSource=ref)
        clone["name"] = made["metadata"]["name"]

    _kill_at(world, step, act)

    report = world.converge()
    assert report.pvs == 2 and len(world.sim.volumes()) == 2  # no second clone
    pv = world.bound_pv(clone["name"])
    assert _size(world, pv["metadata"]["annotations"][VOLUME_ID]) == 2  # grown once
    assert pv["spec"]["capacity"]["storage"] == "2Gi"
    assert world.heketi_counts()["POST /volumes/{id}/clone 202"] <= 1 + (not step.proceed)


# The clone's grow failing in the same process, its outcome unknown each time: the
# retry must start from a fresh GET, never from the clone's remembered answer.
CLONE_GROW_FAULTS = {
    "answer-lost-once": lambda w: w.sim.faults.lose_result_next("volume_expand"),
    "answer-lost-thrice": lambda w: w.sim.faults.lose_result_next("volume_expand", count=3),
    "dropped-after-effect": lambda w: w.sim.faults.drop_connection_next(
        "volume_expand", count=2, after_effect=True
    ),
    "async-failure": lambda w: w.sim.faults.fail_async_next("volume_expand", count=2),
    "answer-late": lambda w: w.sim.faults.hang_next(
        "GET /queue/{id}", count=1, seconds=8.0, after_effect=True
    ),
}


@pytest.mark.parametrize("fault", sorted(CLONE_GROW_FAULTS), ids=str)
def test_clone_grow_faults_end_at_the_requested_size(current: World, fault: str) -> None:
    world = current
    world.controller(args=[*ARGS, "--heketi-timeout", "2"]).start()
    sc = world.storage_class()
    source = world.claim(sc)["metadata"]["name"]
    world.bound_pv(source)
    world.converge()
    CLONE_GROW_FAULTS[fault](world)

    ref = {"kind": "PersistentVolumeClaim", "name": source}
    clone = world.claim(sc, size="5Gi", dataSource=ref)["metadata"]["name"]

    pv = world.bound_pv(clone, timeout=90)
    world.converge()
    assert _size(world, pv["metadata"]["annotations"][VOLUME_ID]) == 5
    assert pv["spec"]["capacity"]["storage"] == "5Gi"

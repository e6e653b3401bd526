"""SIGKILL at every step of a block volume's provisioning and deletion, and of an NFS
volume's, then restart and converge: no leaked or duplicate block volume, no CHAP
Secret without its volume, nothing left of deleted claims.

Steps are reached as in ``test_crash_points``: a fault hook holds the request that
marks the step, the controller is killed while it waits there, and the held request
is dropped or carried out after its client died.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from provisioner.audit.compare import run_audit
from provisioner.gluster.block.objects import CHAP_SECRET_TYPE, LABEL_CHAP_FOR_CLAIM
from provisioner.gluster.intent import LABEL_INTENT
from tests.builders import class_body

if TYPE_CHECKING:
    from conftest import World

BLOCK = "gluster.org/glusterblock"
PROVISIONER = "gluster.org/heketi"
NAMESPACE = "default"
CLAIMS = 3
SWEEP = ["--orphan-sweep-period", "1", "--orphan-grace-seconds", "0.5"]


@dataclass(frozen=True)
class Step:
    id: str
    arm: Callable[[World], Any]
    proceed: bool


PROVISION_STEPS = [
    Step("intent-lost",
         lambda w: w.sandbox.faults.hold_next_write("configmaps", verbs={"create"}), False),
    Step("intent-saved",
         lambda w: w.sandbox.faults.hold_next_write(
             "configmaps", verbs={"create"}, after_effect=True), True),
    Step("create-sent-lost", lambda w: w.sim.faults.hold_next("blockvolume_create"), False),
    Step("create-sent-applied", lambda w: w.sim.faults.hold_next("blockvolume_create"), True),
    Step("create-accepted",
         lambda w: w.sim.faults.hold_next("blockvolume_create", after_effect=True), True),
    Step("chap-secret-lost",
         lambda w: w.sandbox.faults.hold_next_write("secrets", verbs={"create"}), False),
    Step("chap-secret-saved",
         lambda w: w.sandbox.faults.hold_next_write(
             "secrets", verbs={"create"}, after_effect=True), True),
    Step("pv-lost",
         lambda w: w.sandbox.faults.hold_next_write("persistentvolumes", verbs={"create"}),
         False),
    Step("pv-saved",
         lambda w: w.sandbox.faults.hold_next_write(
             "persistentvolumes", verbs={"create"}, after_effect=True), True),
]  # fmt: skip

DELETE_STEPS = [
    Step("delete-sent-lost", lambda w: w.sim.faults.hold_next("blockvolume_delete"), False),
    Step("delete-accepted",
         lambda w: w.sim.faults.hold_next("blockvolume_delete", after_effect=True), True),
    Step("secret-delete-lost",
         lambda w: w.sandbox.faults.hold_next_write("secrets", verbs={"delete"}), False),
    Step("secret-deleted",
         lambda w: w.sandbox.faults.hold_next_write(
             "secrets", verbs={"delete"}, after_effect=True), True),
    Step("finalizer-patch-lost",
         lambda w: w.sandbox.faults.hold_next_write("persistentvolumes", verbs={"patch"}),
         False),
]  # fmt: skip


def block_class(world: World) -> str:
    world.sim.set_block_hosting(size_gb=100)
    name = "block-class"
    body = class_body(
        name, world.sim.url, provisioner=BLOCK,
        restsecretnamespace=NAMESPACE, restsecretname=world.secret(),
    )  # fmt: skip
    world.kube.create("storageclasses", body)
    return name


def block_settled(world: World) -> list[str]:
    """What still differs from the end state (empty: converged)."""
    wrong: list[str] = []
    claims = {c["metadata"]["name"]: c for c in world.sandbox.list_objects(
        "persistentvolumeclaims", NAMESPACE)}  # fmt: skip
    for name, uid in world.expected.items():
        claim = claims.get(name)
        if claim is None or (claim.get("status") or {}).get("phase") != "Bound":
            wrong.append(f"claim {name} not Bound")
        elif claim["spec"].get("volumeName") != f"pvc-{uid}":
            wrong.append(f"claim {name} bound to {claim['spec'].get('volumeName')}")
    want = Counter(f"pvc-{uid}" for uid in world.expected.values())
    blocks = Counter(b["name"] for b in world.sim.block_volumes())
    if blocks != want:
        wrong.append(f"block volumes: extra {sorted((blocks - want).elements())} "
                     f"missing {sorted(want - blocks)}")  # fmt: skip
    pvs = {p["metadata"]["name"] for p in world.sandbox.list_objects("persistentvolumes")}
    if pvs != set(want):
        wrong.append(f"PVs: extra {sorted(pvs - set(want))} missing {sorted(set(want) - pvs)}")
    chap = Counter(
        (s["metadata"].get("labels") or {}).get(LABEL_CHAP_FOR_CLAIM)
        for s in world.sandbox.list_objects("secrets", NAMESPACE)
        if s.get("type") == CHAP_SECRET_TYPE
    )
    if chap != Counter(world.expected.values()):
        wrong.append(f"CHAP Secrets {dict(chap)} do not match the live claims")
    live = {c["metadata"]["uid"] for c in claims.values()}
    records = {
        obj["metadata"]["name"][-36:]
        for obj in world.sandbox.list_objects("configmaps", NAMESPACE)
        if LABEL_INTENT in (obj["metadata"].get("labels") or {})
    }
    if records - live:
        wrong.append("intent records left for claims that are gone")
    return wrong


def converge(world: World, timeout: float = 90.0) -> None:
    wrong: list[str] = []

    def settled() -> bool:
        wrong[:] = block_settled(world)
        return not wrong

    try:
        world.wait_for(settled, timeout, "convergence", interval=0.1)
    except Exception:
        raise AssertionError(f"not converged after {timeout}s: {wrong[:10]}") from None
    output = world.all_output()
    assert world.admin_key not in output
    for block in world.sim.block_volumes():  # CHAP passwords never reach a log
        assert block["blockvolume"]["password"] not in output


def _kill_at(world: World, step: Step, act: Callable[[], None]) -> None:
    controller = world.controllers[0]
    hold = step.arm(world)
    act()
    assert hold.wait_reached(60), f"step {step.id} never reached"
    controller.kill()
    hold.release(proceed=step.proceed)
    controller.start()


@pytest.mark.parametrize("step", PROVISION_STEPS, ids=lambda s: s.id)
def test_kill_during_block_provisioning(world: World, step: Step) -> None:
    world.controller(args=SWEEP).start()
    sc = block_class(world)

    _kill_at(world, step, lambda: [world.claim(sc) for _ in range(CLAIMS)])

    converge(world)
    assert world.heketi_counts()["POST /blockvolumes 202"] <= CLAIMS + (not step.proceed)


@pytest.mark.parametrize("step", DELETE_STEPS, ids=lambda s: s.id)
def test_kill_during_block_deletion(world: World, step: Step) -> None:
    world.controller(args=SWEEP).start()
    sc = block_class(world)
    names = [world.claim(sc)["metadata"]["name"] for _ in range(CLAIMS)]
    converge(world)

    _kill_at(world, step, lambda: [world.delete_claim(n) for n in names])

    converge(world)
    assert world.sim.block_volumes() == []


def test_block_claim_deleted_while_down_mid_provision(world: World) -> None:
    """Block volume and CHAP Secret exist, no PV, and the claim goes while no
    controller runs: the successor's sweep deletes both, from the intent record."""
    controller = world.controller(args=SWEEP).start()
    sc = block_class(world)
    hold = world.sandbox.faults.hold_next_write("persistentvolumes", verbs={"create"})
    doomed = world.claim(sc)["metadata"]["name"]
    assert hold.wait_reached(60)
    controller.kill()
    hold.release(proceed=False)
    assert len(world.sim.block_volumes()) == 1
    world.delete_claim(doomed)
    survivor = world.claim(sc)["metadata"]["name"]

    controller.start()

    world.bound_pv(survivor)
    converge(world)


@pytest.mark.parametrize("proceed", [False, True], ids=["pv-lost", "pv-saved"])
def test_kill_during_nfs_provisioning(world: World, proceed: bool) -> None:
    world.controller(args=SWEEP).start()
    sc = world.storage_class(pvtype="nfs", nfsserver="10.0.9.9")
    hold = world.sandbox.faults.hold_next_write(
        "persistentvolumes", verbs={"create"}, after_effect=proceed
    )
    controller = world.controllers[0]
    for _ in range(CLAIMS):
        world.claim(sc)
    assert hold.wait_reached(60)
    controller.kill()
    hold.release(proceed=proceed)
    controller.start()

    def settled() -> bool:
        pvs = world.sandbox.list_objects("persistentvolumes")
        names = Counter(v["name"] for v in world.sim.volumes())
        want = Counter(f"pvc-{uid}" for uid in world.expected.values())
        bound = [
            c for c in world.sandbox.list_objects("persistentvolumeclaims", NAMESPACE)
            if (c.get("status") or {}).get("phase") == "Bound"
        ]  # fmt: skip
        return len(bound) == CLAIMS and names == want and len(pvs) == CLAIMS

    world.wait_for(settled, 90.0, "NFS claims to converge", interval=0.1)
    report = run_audit(world.kube, provisioner_name=PROVISIONER)
    assert report.problems == 0 and not report.errors, report
    assert all(pv["spec"].get("nfs") for pv in world.sandbox.list_objects("persistentvolumes"))
    assert not world.sandbox.list_objects("endpoints", NAMESPACE)
    assert not world.sandbox.list_objects("services", NAMESPACE)

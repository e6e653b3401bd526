"""Heketi misbehaving: down, throttling, 500s, answers lost, results lost, slowness.

Each test runs the controller as a child process, injects the fault, and checks that
(1) everything converges with no duplicate and no leak (the audit), (2) a failure the
user should know about shows up as a Warning on the claim (or PV) carrying Heketi's
own text, and (3) the process survived: it is alive and still binds a new claim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pytest

from provisioner.config import Settings
from provisioner.controller.caches import Caches
from provisioner.controller.loop import Controller
from provisioner.gluster.provisioner import GlusterProvisioner
from provisioner.k8s.kubeapi import KubeAPI, load_api_client

if TYPE_CHECKING:
    from conftest import World

CLAIMS = 4


def _still_serving(world: World, sc: str) -> None:
    """No worker died: the same process binds a claim made after the trouble."""
    assert all(p.alive() for p in world.controllers if p.process is not None)
    world.bound_pv(world.claim(sc)["metadata"]["name"])
    world.converge()


@dataclass(frozen=True)
class Fault:
    id: str
    arm: Callable[[World], None]
    message: str | None  # Heketi's text, expected in a Warning on a claim


PROVISION_FAULTS = [
    Fault(
        "sync-500",
        lambda w: w.sim.faults.fail_next(
            "volume_create", count=3, status=500, text="Injected: glusterd unreachable on node1"
        ),
        "glusterd unreachable on node1",
    ),
    Fault(
        "async-500",
        lambda w: w.sim.faults.fail_async_next(
            "volume_create", count=2, text="Injected: brick creation failed"
        ),
        "brick creation failed",
    ),
    Fault(
        "429-storm",
        lambda w: w.sim.faults.fail_next(
            "volume_create", count=12, status=429, text="Too many outstanding requests"
        ),
        None,  # the client waits 429s out itself; an event is optional
    ),
    Fault(
        "dropped-before-effect",
        lambda w: w.sim.faults.drop_connection_next("volume_create", count=2),
        None,
    ),
    # Heketi created the volume after the client gave up on the answer.
    Fault(
        "dropped-after-effect",
        lambda w: w.sim.faults.drop_connection_next("volume_create", count=2, after_effect=True),
        None,
    ),
    Fault(
        "lost-async-result", lambda w: w.sim.faults.lose_result_next("volume_create", count=2), None
    ),
    Fault(
        "queue-poll-dropped",
        lambda w: w.sim.faults.drop_connection_next("GET /queue/{id}", count=3),
        None,
    ),
]


@pytest.mark.parametrize("fault", PROVISION_FAULTS, ids=lambda f: f.id)
def test_provisioning_through_heketi_faults(world: World, fault: Fault) -> None:
    world.controller().start()
    sc = world.storage_class()
    fault.arm(world)
    claims = [world.claim(sc) for _ in range(CLAIMS)]

    world.converge()

    assert world.sim.faults.armed() == {}  # every charge was really spent
    if fault.message is not None:
        messages = [m for c in claims for m in world.warnings_for(c["metadata"]["uid"])]
        assert any(fault.message in m for m in messages), messages
    _still_serving(world, sc)


def test_natural_throttling_storm(world: World) -> None:
    """Heketi's own in-flight limit far below the controller's concurrency."""
    world.sim.set_max_inflight(1)
    world.sim.set_latency({"volume_create": 0.1})
    world.controller().start()
    sc = world.storage_class()
    for _ in range(10):
        world.claim(sc)

    world.converge()

    assert world.heketi_counts()["POST /volumes 429"] > 0  # the storm happened
    assert world.heketi_counts()["POST /volumes 202"] == 10
    _still_serving(world, sc)


def test_heketi_down_for_a_while(world: World) -> None:
    world.controller().start().wait_started()
    sc = world.storage_class()
    world.sim.down()
    claims = [world.claim(sc) for _ in range(CLAIMS)]
    message = world.wait_warning(claims[0]["metadata"]["uid"], "cannot reach Heketi")
    assert world.sim.url in message
    world.sim.up()

    world.converge()
    _still_serving(world, sc)


@pytest.mark.parametrize(
    "arm",
    [
        lambda w: w.sim.faults.fail_next(
            "volume_delete", count=2, status=500, text="Injected: volume busy"
        ),
        lambda w: w.sim.faults.fail_async_next("volume_delete", text="Injected: volume busy"),
        lambda w: w.sim.faults.lose_result_next("volume_delete", count=2),
        lambda w: w.sim.faults.drop_connection_next("volume_delete", after_effect=True),
    ],
    ids=["sync-500", "async-500", "lost-result", "dropped-after-effect"],
)
def test_deletion_through_heketi_faults(world: World, arm: Callable[[World], None]) -> None:
    world.controller().start()
    sc = world.storage_class()
    names = [world.claim(sc)["metadata"]["name"] for _ in range(CLAIMS)]
    pvs = [world.bound_pv(n)["metadata"]["name"] for n in names]
    arm(world)

    for name in names:
        world.delete_claim(name)

    world.converge()
    assert world.sim.faults.armed() == {}
    pv_events = [
        e
        for e in world.sandbox.list_objects("events")
        if (e.get("involvedObject") or {}).get("name") in pvs and e.get("type") == "Warning"
    ]
    if any("volume busy" in str(e.get("message")) for e in pv_events):
        assert all(e["reason"] == "VolumeFailedDelete" for e in pv_events)
    _still_serving(world, sc)


def test_slow_create_beyond_the_client_timeout(world: World) -> None:
    """Heketi answers the create only after the client's read timeout; the volume is
    made all the same. Run in-process, because the timeout (30 s) is not a flag: a
    1 s timeout here keeps the test short (see the report: --heketi-timeout)."""
    settings = replace(
        Settings(),
        kubeconfig=world.kubeconfig,
        metrics_address="",
        backoff_base=0.2,
        backoff_cap=2.0,
        shutdown_grace=2.0,
    )
    kube = KubeAPI(load_api_client(world.kubeconfig))
    caches = Caches(kube, settings)
    gluster = GlusterProvisioner(
        kube=kube,
        provisioner_name=settings.provisioner_name,
        class_lookup=caches.storage_class,
        heketi_timeout=(2.0, 1.0),
    )
    controller = Controller(kube, gluster, settings, caches=caches)
    controller.start()
    try:
        sc = world.storage_class()
        world.sim.faults.hang_next("volume_create", seconds=3.0, after_effect=True)
        world.sim.faults.hang_next("GET /queue/{id}", seconds=3.0)
        claim: dict[str, Any] = world.claim(sc)
        world.converge()
        assert world.warnings_for(claim["metadata"]["uid"])  # the user was told
        world.bound_pv(world.claim(sc)["metadata"]["name"])
        world.converge()
    finally:
        controller.stop(1.0)

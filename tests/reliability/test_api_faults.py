"""The API server misbehaving: watches cut, 410 Gone, conflicts, 500s and 429s on
writes. Nothing may be missed (every claim ends Bound, every deleted one cleaned up)
and nothing duplicated — without the periodic resync to paper over a missed event
(it runs every 300 s by default, far beyond these tests)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import World

CLAIMS = 6


@dataclass(frozen=True)
class ApiFault:
    id: str
    arm: Callable[[World], None]
    repeat: bool = False  # arm again between claims, so it hits while work is going on


def _drop_watches(world: World) -> None:
    world.sandbox.faults.drop_watches()


def _expire_watches(world: World) -> None:
    """The re-watch after the drop finds its resourceVersion expired: relist."""
    for resource in ("persistentvolumeclaims", "persistentvolumes"):
        world.sandbox.faults.expire_next_watch(resource)
    world.sandbox.faults.drop_watches()


def _fail_endpoints_writes(world: World) -> None:
    for resource in ("endpoints", "services"):
        world.sandbox.faults.fail_next_writes(resource, count=2, status=500, message="injected")


API_FAULTS = [
    ApiFault("watches-dropped", _drop_watches, True),
    ApiFault("410-gone", _expire_watches, True),
    ApiFault(
        "pv-create-500",
        lambda w: w.sandbox.faults.fail_next_writes(
            "persistentvolumes", count=4, status=500, message="etcdserver: request timed out",
            verbs={"create"},
        ),
    ),
    ApiFault(
        "pv-create-429",
        lambda w: w.sandbox.faults.fail_next_writes(
            "persistentvolumes", count=4, status=429, message="too many requests",
            verbs={"create"},
        ),
    ),
    ApiFault(
        "finalizer-conflicts",
        lambda w: w.sandbox.faults.fail_next_writes(
            "persistentvolumes", count=6, status=409, message="the object has been modified",
            verbs={"patch"},
        ),
    ),
    ApiFault("endpoints-500", _fail_endpoints_writes),
    ApiFault(
        "events-500",
        lambda w: w.sandbox.faults.fail_next_writes(
            "events", count=20, status=500, message="injected"
        ),
    ),
]  # fmt: skip


@pytest.mark.parametrize("fault", API_FAULTS, ids=lambda f: f.id)
def test_api_faults_during_provisioning_and_deletion(world: World, fault: ApiFault) -> None:
    world.controller().start().wait_started()
    sc = world.storage_class()
    fault.arm(world)
    names = []
    for _ in range(CLAIMS):
        names.append(world.claim(sc)["metadata"]["name"])
        if fault.repeat:
            fault.arm(world)
    world.converge()

    fault.arm(world)
    for name in names[: CLAIMS // 2]:
        world.delete_claim(name)
        if fault.repeat:
            fault.arm(world)
    world.converge()

    if fault.id == "410-gone":  # the informers really relisted
        lists = [
            r for r in world.sandbox.request_log
            if r.verb == "list" and r.resource == "persistentvolumeclaims"
        ]  # fmt: skip
        assert len(lists) > 1
    created = world.heketi_counts()["POST /volumes 202"]
    assert created == CLAIMS  # not one create more than claims
    world.sandbox.faults.clear()
    world.bound_pv(world.claim(sc)["metadata"]["name"])  # and it is still serving


def test_pv_create_500_shows_on_the_claim(world: World) -> None:
    world.controller().start()
    sc = world.storage_class()
    world.sandbox.faults.fail_next_writes(
        "persistentvolumes", count=2, status=500, message="etcdserver: leader changed",
        verbs={"create"},
    )  # fmt: skip
    claim = world.claim(sc)
    message = world.wait_warning(claim["metadata"]["uid"], "etcdserver: leader changed")
    assert "PersistentVolume" in message
    world.converge()

"""Random SIGKILLs at random moments while claims are created and deleted.

Sizes come from the environment so that the same test runs for hours outside CI:

    HEKETI_PROVISIONER_SOAK_KILLS   kills (default 20)
    HEKETI_PROVISIONER_SOAK_CLAIMS  claims created, about half deleted again (default 100)
    HEKETI_PROVISIONER_SOAK_SEED    seed of every random choice (default: random, printed)

The kill moments and the load come from one seeded RNG (printed, so a failing run can
be repeated). The thread interleaving is not repeatable; the outcome must not depend
on it: the same end state and a clean audit every time.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import World


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


KILLS = env_int("HEKETI_PROVISIONER_SOAK_KILLS", 20)
CLAIMS = env_int("HEKETI_PROVISIONER_SOAK_CLAIMS", 100)
MAX_PAUSE = 1.0  # seconds a controller lives at most between kills (random below it)


def _load(world: World, sc: str, rng: random.Random, stop: threading.Event, span: float) -> None:
    """Create CLAIMS claims spread over ``span`` seconds; delete about half of them."""
    live: list[str] = []
    for _ in range(CLAIMS):
        live.append(world.claim(sc)["metadata"]["name"])
        if len(live) > 1 and rng.random() < 0.5:
            world.delete_claim(live.pop(rng.randrange(len(live) - 1)))
        stop.wait(rng.uniform(0, 2 * span / CLAIMS))  # pacing of the load, not a sync


@pytest.mark.timeout(max(120, KILLS * 10 + CLAIMS))
def test_random_kills_under_load(world: World) -> None:
    seed = env_int("HEKETI_PROVISIONER_SOAK_SEED", random.SystemRandom().randrange(2**32))
    print(f"\n[soak] seed={seed} kills={KILLS} claims={CLAIMS}")
    rng = random.Random(seed)
    load_rng = random.Random(rng.randrange(2**32))
    world.sim.set_latency({"volume_create": 0.05, "volume_delete": 0.05})
    sc = world.storage_class()
    controller = world.controller()
    stop = threading.Event()
    failures: list[BaseException] = []

    def load() -> None:
        try:
            _load(world, sc, load_rng, stop, span=KILLS * (MAX_PAUSE / 2 + 1.0))
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    loader = threading.Thread(target=load, name="load", daemon=True)
    loader.start()
    started = time.monotonic()
    try:
        for _ in range(KILLS):
            controller.start()
            # The random moment: anywhere from start-up to steady work.
            stop.wait(rng.uniform(0, MAX_PAUSE))
            controller.kill()
        loader.join(timeout=300)
    finally:
        stop.set()
    assert not failures, failures
    assert not loader.is_alive()
    controller.start()

    # Claims deleted mid-provision around a kill leave an intent record: the last
    # process's orphan sweep must reclaim every one of them. No leak is tolerated.
    report = world.converge(timeout=120)

    counts = world.heketi_counts()
    print(
        f"[soak] {time.monotonic() - started:.0f}s, {KILLS} kills, {CLAIMS} claims created, "
        f"{len(world.deleted)} deleted, {len(world.expected)} bound; Heketi volumes "
        f"{report.heketi_volumes}, PVs {report.pvs}, leaked {len(report.orphans)}, "
        f"duplicates {len(report.duplicates)}, "
        f"missing {len(report.missing_volumes)}, "
        f"GID collisions {len(report.gid_collisions)}; creates accepted "
        f"{counts['POST /volumes 202']}, deletes accepted {counts['DELETE /volumes/{id} 202']}"
    )

"""Two controller processes with leader election: exactly one acts; when the leader
goes mid-burst (SIGTERM: it releases the Lease at once, so the test does not wait out
the 15 s lease), the other takes over and finishes, with no duplicate."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import World

CLAIMS = 40  # more than the 16 workers: some are still queued at the SIGTERM


def test_one_leader_acts_and_the_other_finishes(world: World) -> None:
    world.sim.set_latency({"volume_create": 0.2})
    first = world.controller(
        name="a", leader_election=True, env={"POD_NAMESPACE": "default", "POD_NAME": "ctl-a"}
    )
    second = world.controller(
        name="b", leader_election=True, env={"POD_NAMESPACE": "default", "POD_NAME": "ctl-b"}
    )
    first.start().wait_started()
    second.start()
    sc = world.storage_class()
    for _ in range(CLAIMS):
        world.claim(sc)
    world.wait_for(
        lambda: first.output().count('"provision.succeeded"') >= 3, 60, "a few provisioned"
    )
    assert second.alive()  # running all along, as a standby
    assert '"controller.started"' not in second.output()  # that did nothing
    done_by_first = first.output().count('"provision.succeeded"')
    assert done_by_first >= 3

    first.terminate()  # mid-burst: the Lease is released on the way out
    second.wait_started()

    world.converge()
    done_by_second = second.output().count('"provision.succeeded"')
    assert done_by_second > 0
    assert world.heketi_counts()["POST /volumes 202"] == CLAIMS  # no create twice
    print(f"\n[leader] first provisioned {first.output().count('provision.succeeded')}, "
          f"second {done_by_second}")  # fmt: skip

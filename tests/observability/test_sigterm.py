"""SIGTERM to a real ``heketi-provisioner run`` process: in-flight work finishes within
the grace period, the Lease is handed back, and the exit status is 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import World

ROOT = Path(__file__).resolve().parents[2]
LEASE = "gluster.org-heketi"
GRACE = 10.0
EXIT_DEADLINE = GRACE + 20.0  # a deadline for a hung process, not a timing assertion


def start_run(world: World, *extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "POD_NAMESPACE": "default",
        "POD_NAME": "sigterm-test",
        "HEKETI_PROVISIONER_LOG_FORMAT": "json",
        "HEKETI_PROVISIONER_SHUTDOWN_GRACE": str(GRACE),
        "HEKETI_PROVISIONER_ORPHAN_SWEEP_PERIOD": "0",
    }
    command = [sys.executable, "-m", "provisioner", "run", "--kubeconfig",
               world.stack.kubeconfig_path, "--metrics-address", "0", *extra]  # fmt: skip
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def lease(world: World) -> dict[str, Any] | None:
    found: dict[str, Any] | None = world.sandbox.get_object("leases", "default", LEASE)
    return found


def controller_watching(world: World) -> bool:
    """The last informer to start (PVs) is watching: the controller runs."""
    return any(
        r.verb == "watch" and r.resource == "persistentvolumes"
        and r.user_agent.startswith("heketi-provisioner/")
        for r in world.sandbox.request_log
    )  # fmt: skip


def stop(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=EXIT_DEADLINE)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        message = f"no exit {EXIT_DEADLINE}s after SIGTERM:\n{output.decode()}"
        raise AssertionError(message) from None
    return process.returncode, output.decode()


def test_sigterm_finishes_in_flight_work_and_releases_the_lease(slow_world: World) -> None:
    world = slow_world
    process = start_run(world)
    try:
        world.wait_for(
            lambda: (
                ((lease(world) or {}).get("spec") or {})
                .get("holderIdentity", "")
                .startswith("sigterm-test_")
            ),
            what="the process to take the Lease",
        )
        world.wait_for(lambda: controller_watching(world), what="the controller to start")
        claim = world.claim(world.storage_class())
        world.wait_for(
            lambda: any(r.method == "POST" and r.status == 202 for r in world.sim.requests),
            what="a Heketi create to be in flight",
        )
    except BaseException:
        process.kill()
        raise

    status, output = stop(process)

    assert status == 0, output
    assert (lease(world) or {}).get("spec", {}).get("holderIdentity") == "", output
    # The create that was in flight finished: its PV was written before the exit.
    assert world.find("persistentvolumes", f"pvc-{claim['metadata']['uid']}") is not None
    assert '"in_flight_finished": true' in output


def test_sigterm_without_leader_election(world: World) -> None:
    process = start_run(world, "--no-leader-election")
    try:
        world.wait_for(lambda: controller_watching(world), what="the controller to start")
    except BaseException:
        process.kill()
        raise

    status, output = stop(process)

    assert status == 0, output
    assert lease(world) is None
    assert '"controller.stopped"' in output

"""A killed test run's processes are found again and killed; processes of runs that
are still going (another checkout, another CI job) are never touched."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbeds.harness.processes import MARKER, leftovers, owner_token, reap_leftovers, wait_for

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


@pytest.fixture
def spawn() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)


def _start(procs: list[subprocess.Popen[bytes]], owner: str, bed: str) -> int:
    p = subprocess.Popen(
        SLEEPER, env={**os.environ, MARKER: f"{bed}:{owner}"}, start_new_session=True
    )
    procs.append(p)
    # the marker is in /proc/<pid>/environ once exec has happened
    environ = Path(f"/proc/{p.pid}/environ")
    wait_for(lambda: MARKER.encode() in environ.read_bytes(), 10, "exec")
    return p.pid


def _dead_owner() -> str:
    """The token of a process that has exited (its pid may be reused: the start time
    in the token still tells them apart)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    token = owner_token(p.pid)
    p.wait()
    return token


def test_processes_of_a_gone_owner_are_reaped_and_live_ones_are_kept(spawn) -> None:
    orphan = _start(spawn, _dead_owner(), "testbed-selftest")
    mine = _start(spawn, owner_token(), "testbed-selftest")

    found = {pid for pid, _ in leftovers("testbed-selftest")}
    assert orphan in found
    assert mine not in found

    assert orphan in reap_leftovers("testbed-selftest")
    wait_for(lambda: spawn[0].poll() is not None, 10, "orphan killed")
    assert spawn[1].poll() is None, "a process whose owner still runs was killed"


def test_a_reused_pid_is_not_taken_for_the_owner(spawn) -> None:
    """Owner token with our own pid but another start time: a recycled pid."""
    pid, _, start = owner_token().partition(".")
    orphan = _start(spawn, f"{pid}.{int(start) + 1}", "testbed-selftest")
    assert orphan in {p for p, _ in leftovers("testbed-selftest")}


def test_other_beds_are_left_to_their_own_cleanup(spawn) -> None:
    orphan = _start(spawn, _dead_owner(), "testbed-other")
    assert orphan not in {p for p, _ in leftovers("testbed-selftest")}
    assert orphan in {p for p, _ in leftovers("testbed-other")}

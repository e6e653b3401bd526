"""Processes a bed starts, waits on, stops, and finds again after a killed run.

Every process started here carries ``HEKETI_PROVISIONER_TESTBED=<bed>:<owner>`` in its
environment, where ``<owner>`` identifies the Python process that started it (pid and
start time, so a recycled pid is not mistaken for the owner). When a test run is
killed, its children survive in their own sessions; ``reap_leftovers()`` finds them
by that marker and kills only those whose owner is gone, so beds of other runs going
on at the same time (another checkout, another CI job) are never touched.

Nothing here sleeps to synchronise: ``wait_for`` polls a condition until a deadline
and fails with what it last saw.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import requests

T = TypeVar("T")
MARKER = "HEKETI_PROVISIONER_TESTBED"
START_TIMEOUT = 120.0


class PeerFailed(RuntimeError):
    """A process did not come up in time, or exited; the message has its log tail."""


def wait_for(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.1,
    check: Callable[[], None] | None = None,
) -> T:
    """Poll ``condition`` until it returns a truthy value; raise after ``timeout`` s.
    ``check`` runs before each poll and may raise (e.g. when a process died)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        if check is not None:
            check()
        try:
            value = condition()
            if value:
                return value
        except (requests.RequestException, OSError, ValueError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"{what}: not within {timeout:.0f} s" + (f" (last error: {last})" if last else "")
            )
        time.sleep(interval)  # the polling interval, not a synchronisation


def local_get(url: str, **kw: Any) -> requests.Response:
    """GET without the environment's proxies and CA bundle (everything is loopback)."""
    with requests.Session() as s:
        s.trust_env = False
        return s.get(url, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot), or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def owner_token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}.{_start_time(pid)}"


def marker(bed: str) -> dict[str, str]:
    """The environment entry that ties a process to ``bed`` and to this owner."""
    return {MARKER: f"{bed}:{owner_token()}"}


def _owner_alive(token: str) -> bool:
    pid, _, start = token.partition(".")
    return pid.isdigit() and _start_time(int(pid)) == start


def leftovers(bed: str | None = None) -> list[tuple[int, str]]:
    """(pid, marker) of processes marked by a bed (``bed`` or any) whose owner is gone."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        for var in environ.split(b"\0"):
            if var.startswith(MARKER.encode() + b"="):
                value = var.split(b"=", 1)[1].decode(errors="replace")
                name, _, token = value.partition(":")
                if (bed is None or name == bed) and not _owner_alive(token):
                    found.append((int(entry.name), value))
                break
    return found


def reap_leftovers(bed: str | None = None) -> list[int]:
    """SIGKILL the process groups of ``leftovers(bed)``; returns the pids killed."""
    killed = []
    for pid, _ in leftovers(bed):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


class Process:
    """A bed's process writing its output to ``<workdir>/<name>.log``, in a session of
    its own (a Ctrl-C of the test run reaches it only through ``stop``)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        workdir: Path,
        env: dict[str, str] | None = None,
        *,
        bed: str = "peers",
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            env={**os.environ, **(env or {}), **marker(bed)},
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def check_running(self) -> None:
        rc = self.proc.poll()
        if rc is not None:
            raise PeerFailed(
                f"{self.name} exited with {rc}; log {self.log_path}:\n{self.log_tail()}"
            )

    def wait_ready(self, condition: Callable[[], Any], timeout: float = START_TIMEOUT) -> None:
        try:
            wait_for(condition, timeout, f"{self.name} ready", check=self.check_running)
        except TimeoutError as e:
            raise PeerFailed(f"{e}; log {self.log_path}:\n{self.log_tail()}") from None

    def stop(self, grace: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()

    def kill(self) -> None:
        """SIGKILL (no shutdown work): a crash, as a fault to inject."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@contextlib.contextmanager
def running(
    name: str,
    argv: Sequence[str],
    workdir: Path,
    env: dict[str, str] | None = None,
    *,
    bed: str = "peers",
) -> Iterator[Process]:
    p = Process(name, argv, workdir, env, bed=bed)
    try:
        yield p
    finally:
        p.stop()

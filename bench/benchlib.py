"""What every benchmark shares: the controller as a child process, waiting, figures.

The controller runs as ``python -m provisioner run`` in its own process, exactly as
in a cluster, while the test bed (Heketi simulator + Kubernetes API sandbox) runs in
the benchmark's process. Two reasons: the controller's CPU time and peak RSS can be
read from ``/proc/<pid>`` without the test bed's share mixed in, and the two do not
fight over one GIL, which would make a slow test bed look like a slow controller.

Benchmarks print figures; nothing here ever fails because something was slow.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from provisioner.sandbox.waiting import wait_for

T = TypeVar("T")

CONTROLLER_USER_AGENT = "heketi-provisioner/"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """The benchmark could not run to the end (never raised for being slow)."""


def wait_until(probe: Callable[[], T], *, timeout: float, what: str, interval: float = 0.02) -> T:
    """Return ``probe()``'s first truthy value; BenchError once ``timeout`` passes."""
    return wait_for(probe, timeout, what, interval=interval, error=BenchError)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def load_average() -> str:
    """The machine's load when the run ended: other people's tests share these cores."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


# -- the controller process ------------------------------------------------------------


class ControllerProcess:
    """``python -m provisioner run`` against a kubeconfig, with /readyz on a free port."""

    def __init__(
        self,
        kubeconfig: str,
        workdir: Path,
        *,
        workers: int | None = None,
        heketi_concurrency: int | None = None,
        log_level: str = "info",
        profile_to: str | None = None,
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        name: str = "controller",
    ) -> None:
        """``extra_args`` go to ``run``; ``env`` is added to this process's environment
        (``POD_NAME`` gives each replica its own leader identity); ``name`` names the
        log file, so two replicas can share a workdir."""
        self.port = free_port()
        self.log_path = workdir / f"{name}.log"
        command = [
            sys.executable, "-m", "provisioner", "run",
            "--kubeconfig", kubeconfig,
            "--metrics-address", f"127.0.0.1:{self.port}",
            "--log-format", "json",
            "--log-level", log_level,
        ]  # fmt: skip
        if workers is not None:
            command += ["--workers", str(workers)]
        if heketi_concurrency is not None:
            command += ["--heketi-concurrency", str(heketi_concurrency)]
        command += list(extra_args)
        if profile_to:
            # py-spy samples from outside: the controller runs unmodified.
            py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            # A .txt name gets py-spy's collapsed stacks (greppable), else a flame graph.
            kind = "raw" if profile_to.endswith(".txt") else "flamegraph"
            # BENCH_PROFILE_GIL=1: only samples holding the GIL, i.e. Python CPU time.
            gil = ["--gil"] if os.environ.get("BENCH_PROFILE_GIL") == "1" else []
            command = [py_spy, "record", "--rate", "200", "--format", kind, *gil,
                       "-o", profile_to, "--", *command]  # fmt: skip
        self.command = command
        self.started = 0.0
        self._log = self.log_path.open("wb")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=None if env is None else {**os.environ, **env},
        )
        self.profiled = profile_to is not None

    @property
    def pid(self) -> int:
        """The controller's pid (under py-spy, the child py-spy started)."""
        if not self.profiled:
            return self.process.pid
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        found = wait_until(
            lambda: children.read_text().split(), timeout=10, what="the profiled controller"
        )
        return int(found[0])

    def _get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return int(r.status), r.read()
        except urllib.error.HTTPError as err:
            return int(err.code), b""
        except OSError:
            return 0, b""

    def logged(self, event: str) -> bool:
        """Whether the controller has logged this event (its JSON ``event`` value)."""
        return f'"{event}"'.encode() in self.log_path.read_bytes()

    def kill(self) -> None:
        """SIGKILL: a leader that dies without releasing its Lease (a node lost)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def wait_ready(self, timeout: float) -> float:
        """Seconds from process start until it logged ``controller.started``.

        The log line, not only /readyz: the port was free when chosen, but another
        process on this shared machine could take it before the child binds it, and
        a stranger's 200 must not pass for ours.
        """

        def ready() -> bool:
            if self.process.poll() is not None:
                raise BenchError(f"the controller exited early; see {self.log_path}")
            return b'"controller.started"' in self.log_path.read_bytes()

        wait_until(ready, timeout=timeout, what="controller.started", interval=0.01)
        elapsed = time.monotonic() - self.started
        status = self._get("/readyz")[0]
        if status != 200:
            raise BenchError(f"started, but /readyz answered {status}")
        return elapsed

    def metric(self, name: str) -> float | None:
        """One unlabelled sample from /metrics (e.g. the work queue depth)."""
        status, body = self._get("/metrics")
        if status != 200:
            return None
        for line in body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def cpu_seconds(self) -> float:
        """utime + stime of the controller process so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def peak_rss_mb(self) -> float:
        """VmHWM: the most resident memory the process has had, in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise BenchError("no VmHWM in /proc status")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (SIGINT for py-spy, which then writes its profile), then wait."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT if self.profiled else signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> ControllerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Sampler:
    """Samples ``probe()`` every ``interval`` seconds on a thread; ``mean()`` at the end.

    Used for Heketi's in-flight operations: the mean over K says how much of Heketi's
    capacity the controller kept busy, which separates "the controller left slots
    idle" from "each operation took longer than L" (a late test bed).
    """

    def __init__(self, probe: Callable[[], float], interval: float = 0.005) -> None:
        self._probe = probe
        self._interval = interval
        self._values: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._values.append(self._probe())

    def stop(self) -> float:
        """Stop sampling; the mean of what was seen (0.0 if nothing)."""
        self._stop.set()
        self._thread.join()
        return sum(self._values) / len(self._values) if self._values else 0.0


# -- counting what the controller asked for ---------------------------------------------


def controller_writes(records: Iterable[Any]) -> dict[str, int]:
    """Kubernetes writes by the controller's user agent, per ``verb resource``."""
    counts: dict[str, int] = {}
    for r in records:
        if r.verb in WRITE_VERBS and r.user_agent.startswith(CONTROLLER_USER_AGENT):
            key = f"{r.verb} {r.resource}"
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def controller_reads(records: Iterable[Any], resource: str) -> int:
    """GETs of ``resource`` objects by the controller's user agent (lists excluded)."""
    return sum(
        1
        for r in records
        if r.verb == "get" and r.resource == resource
        and r.user_agent.startswith(CONTROLLER_USER_AGENT)
    )  # fmt: skip


def heketi_breakdown(records: Iterable[Any]) -> dict[str, int]:
    """Heketi requests split into creates (POST), polls (queue), reads (other GETs)."""
    out = {"create": 0, "delete": 0, "polls": 0, "reads": 0, "other": 0, "throttled": 0}
    for r in records:
        if r.status == 429:
            out["throttled"] += 1
        if r.route.startswith("/queue"):
            out["polls"] += 1
        elif r.method == "POST":
            out["create"] += 1
        elif r.method == "DELETE":
            out["delete"] += 1
        elif r.method == "GET":
            out["reads"] += 1
        else:
            out["other"] += 1
    return out


# -- command line -----------------------------------------------------------------------


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark takes: the test bed's Heketi, the controller's
    tuning, the sandbox probes and the output format."""
    parser.add_argument("--heketi-latency", type=float, default=0.2, help="seconds per operation")
    parser.add_argument("--heketi-inflight", type=int, default=8, help="Heketi's in-flight limit")
    parser.add_argument("--workers", type=int, help="controller --workers (default: its own)")
    parser.add_argument(
        "--heketi-concurrency", type=int, help="controller --heketi-concurrency (default: its own)"
    )
    parser.add_argument(
        "--probe-seconds", type=float, default=2.0, help="length of each sandbox capacity probe"
    )
    parser.add_argument("--profile-controller", metavar="SVG", help="record it with py-spy")
    parser.add_argument("--json", action="store_true", help="print JSON with fixed keys")


def report(
    run: Callable[[argparse.Namespace], dict[str, Any]],
    args: argparse.Namespace,
    title: str,
    targets: dict[str, str],
) -> int:
    """Run the benchmark and print its figures; the exit status (2: it could not finish)."""
    try:
        figures = run(args)
    except BenchError as err:
        print(f"benchmark could not finish: {err}")
        return 2
    emit(title, figures, targets, args.json)
    return 0


# -- output -----------------------------------------------------------------------------


def emit(title: str, figures: dict[str, Any], targets: dict[str, str], as_json: bool) -> None:
    """JSON (fixed keys, one line: easy to collect from many runs) or a readable table
    with each target next to its figure."""
    if as_json:
        print(json.dumps(figures, sort_keys=False))
        return
    print(title)
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else json.dumps(value)
        target = targets.get(key, "")
        print(f"  {key:<{width}}  {shown:>12}  {target}")


def rounded(figures: dict[str, Any], digits: int = 4) -> dict[str, Any]:
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in figures.items()}

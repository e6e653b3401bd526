"""Reliability tests: the controller as a real child process, killed with SIGKILL.

The Heketi simulator and the Kubernetes API sandbox run inside the test process (so
that faults can be armed and state read directly); the controller is
``python -m provisioner run`` talking to them over loopback HTTP, exactly as in a
cluster. Every test ends with the same oracle: ``run_audit`` plus direct checks of
both sides (``World.converge``).

Waits are on conditions with generous deadlines (2 shared cores); nothing sleeps to
synchronise. Random choices come from a seeded RNG whose seed is printed.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.audit.compare import run_audit
from provisioner.audit.report import AuditReport
from provisioner.controller.keys import ANN_PROVISIONED_BY
from provisioner.gluster.annotations import ANN_CLONE_OF, ANN_GID, LABEL_PROVISIONED_FOR_PVC
from provisioner.gluster.intent import LABEL_INTENT
from provisioner.k8s.errors import KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI, load_api_client
from provisioner.sandbox.heketi import HeketiSimulator
from provisioner.sandbox.kube import KubeSandbox
from provisioner.sandbox.waiting import WaitTimeout, wait_for
from tests.builders import claim_body, class_body, secret_body

PROVISIONER = "gluster.org/heketi"
NAMESPACE = "default"
# Recognisable, so that a leak of it anywhere can be searched for.
CANARY_KEY = "KEY-c4n4ry-7f3e-0123456789abcdef"  # 32 bytes: HS256 wants no less
REPO = Path(__file__).resolve().parents[2]

_names = itertools.count(1)


def env_int(name: str, default: int) -> int:
    """Iteration counts: modest in CI, as large as wanted outside it."""
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ControllerProcess:
    """``python -m provisioner run`` as a child; its stdout/stderr go to files so that
    tests can read everything it ever printed (across restarts)."""

    def __init__(
        self,
        kubeconfig: str,
        log_dir: Path,
        *,
        name: str = "controller",
        leader_election: bool = False,
        metrics_port: int | None = None,
        log_level: str = "info",
        env: dict[str, str] | None = None,
        args: Iterable[str] = (),
    ) -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.name = name
        self.leader_election = leader_election
        self.metrics_port = metrics_port
        self.log_level = log_level
        self.extra_env = dict(env or {})
        self.extra_args = list(args)
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.files: list[Path] = []

    def start(self) -> ControllerProcess:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.runs += 1
        out = self.log_dir / f"{self.name}-{self.runs}.out"
        err = self.log_dir / f"{self.name}-{self.runs}.err"
        self.files += [out, err]
        metrics = f"127.0.0.1:{self.metrics_port}" if self.metrics_port else "0"
        argv = [
            sys.executable, "-m", "provisioner", "run",
            "--kubeconfig", self.kubeconfig,
            "--metrics-address", metrics,
            "--log-format", "json",
            "--log-level", self.log_level,
            "--shutdown-grace", "5",
        ]  # fmt: skip
        if not self.leader_election:
            argv.append("--no-leader-election")
        argv += self.extra_args
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEKETI_PROVISIONER_")}
        env.update(PYTHONUNBUFFERED="1", **self.extra_env)
        with out.open("wb") as stdout, err.open("wb") as stderr:
            self.process = subprocess.Popen(
                argv, stdout=stdout, stderr=stderr, env=env, cwd=REPO, start_new_session=True
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def current_output(self) -> str:
        return self.files[-2].read_text(errors="replace") if self.files else ""

    def output(self) -> str:
        """Everything every run of this process printed, stdout and stderr."""
        return "".join(f.read_text(errors="replace") for f in self.files if f.exists())

    def wait_started(self, timeout: float = 60.0) -> ControllerProcess:
        """Until the workers run (the ``controller.started`` log line)."""

        def started() -> bool:
            if not self.alive():
                raise AssertionError(f"{self.name} exited early:\n{self.output()[-3000:]}")
            return '"controller.started"' in self.current_output()

        wait_for(started, timeout, f"{self.name} to start")
        return self

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or released."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def http_get(self, path: str) -> tuple[int, str]:
        assert self.metrics_port is not None
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")


class World:
    """Both servers, a client for acting as a user, and the controller processes."""

    wait_for = staticmethod(wait_for)

    def __init__(
        self,
        tmp: Path,
        *,
        admin_key: str = CANARY_KEY,
        seed: int = 7,
        kube_version: str = "1.25.16",
    ) -> None:
        self.tmp = tmp
        self.admin_key = admin_key
        self.sim = HeketiSimulator(admin_key=admin_key, seed=seed)
        self.sandbox = KubeSandbox(version=kube_version, kubeconfig_path=tmp / "kubeconfig")
        self.sim.start()
        self.sandbox.start()
        assert self.sandbox.kubeconfig_path is not None
        self.kubeconfig: str = self.sandbox.kubeconfig_path
        self.kube = KubeAPI(load_api_client(self.kubeconfig))
        self.controllers: list[ControllerProcess] = []
        self.expected: dict[str, str] = {}  # claim name -> uid: must end Bound
        self.deleted: dict[str, str] = {}  # claim name -> uid: must leave nothing

    def close(self) -> None:
        for process in self.controllers:
            process.kill()
        self.sim.faults.clear()
        self.sandbox.faults.clear()
        self.sandbox.stop()
        self.sim.stop()

    # -- controllers -------------------------------------------------------------

    def controller(self, **options: Any) -> ControllerProcess:
        """A new (not yet started) controller process, killed at teardown."""
        options.setdefault("name", f"controller{len(self.controllers) + 1}")
        process = ControllerProcess(self.kubeconfig, self.tmp, **options)
        self.controllers.append(process)
        return process

    def all_output(self) -> str:
        return "".join(p.output() for p in self.controllers)

    # -- objects ------------------------------------------------------------------

    def secret(
        self, *, key: str | None = None, type_: str = "kubernetes.io/glusterfs", entry: str = "key"
    ) -> str:
        name = f"heketi-{next(_names)}"
        value = self.admin_key if key is None else key
        body = secret_body(name, NAMESPACE, value, type_=type_, entry=entry)
        self.kube.create("secrets", body, NAMESPACE)
        return name

    def storage_class(
        self, *, secret: str | None = None, expandable: bool = False, **params: str | None
    ) -> str:
        name = f"gluster-{next(_names)}"
        body = class_body(
            name,
            self.sim.url,
            secret=(NAMESPACE, secret or self.secret()),
            provisioner=PROVISIONER,
            **params,
        )
        if expandable:
            body["allowVolumeExpansion"] = True
        self.kube.create("storageclasses", body)
        return name

    def claim(
        self, storage_class: str, *, size: str = "1Gi", name: str | None = None,
        expect_bound: bool = True, **spec: Any,
    ) -> dict[str, Any]:  # fmt: skip
        body = claim_body(
            name or f"claim-{next(_names)}", NAMESPACE, storage_class, size=size, **spec
        )
        claim = self.kube.create("persistentvolumeclaims", body, NAMESPACE)
        if expect_bound:
            self.expected[claim["metadata"]["name"]] = claim["metadata"]["uid"]
        return claim

    def delete_claim(self, name: str) -> None:
        uid = self.expected.pop(name, None)
        if uid is not None:
            self.deleted[name] = uid
        with contextlib.suppress(KubeNotFound):
            self.kube.delete("persistentvolumeclaims", name, NAMESPACE)

    def delete_class(self, name: str) -> None:
        """Bad classes go before the audit, which would otherwise try their URLs."""
        self.kube.delete("storageclasses", name)

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict | None:
        try:
            return self.kube.get(resource, name, namespace)
        except KubeNotFound:
            return None

    def events_for(self, uid: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.sandbox.list_objects("events")
            if (e.get("involvedObject") or {}).get("uid") == uid
        ]

    def warnings_for(self, uid: str) -> list[str]:
        return [str(e.get("message")) for e in self.events_for(uid) if e.get("type") == "Warning"]

    def wait_warning(self, uid: str, containing: str = "", timeout: float = 30.0) -> str:
        def check() -> str | None:
            return next((m for m in self.warnings_for(uid) if containing in m), None)

        return wait_for(check, timeout, f"a Warning containing {containing!r} on claim {uid}")

    def heketi_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for record in self.sim.requests:
            route = record.route
            if not route.startswith(f"{record.method} "):
                route = f"{record.method} {route}"
            counts[f"{route} {'dropped' if record.status is None else record.status}"] += 1
        return counts

    def bound_pv(self, name: str, timeout: float = 60.0) -> dict[str, Any]:
        def check() -> dict | None:
            claim = self.get("persistentvolumeclaims", name, NAMESPACE)
            if not claim or (claim.get("status") or {}).get("phase") != "Bound":
                return None
            # Seen once in CI: phase Bound read while spec.volumeName was absent; wait
            # for both rather than fail on the lookup (cause not yet understood).
            volume = (claim.get("spec") or {}).get("volumeName")
            return self.get("persistentvolumes", volume) if volume else None

        return wait_for(check, timeout, f"claim {name} to be Bound")

    # -- the oracle ------------------------------------------------------------------

    def _settled(self, tolerated: set[str]) -> list[str]:
        """What still differs from the end state (empty when converged); ``tolerated``
        are claim uids whose leftovers (volume, endpoints, never a PV) are accepted."""
        wrong: list[str] = []
        claims = {c["metadata"]["name"]: c for c in self.sandbox.list_objects(
            "persistentvolumeclaims", NAMESPACE)}  # fmt: skip
        for name, uid in self.expected.items():
            claim = claims.get(name)
            if claim is None or (claim.get("status") or {}).get("phase") != "Bound":
                wrong.append(f"claim {name} not Bound")
            elif claim["spec"].get("volumeName") != f"pvc-{uid}":
                wrong.append(f"claim {name} bound to {claim['spec'].get('volumeName')}")
        for name in self.deleted:
            if name in claims and claims[name]["metadata"]["uid"] == self.deleted[name]:
                wrong.append(f"deleted claim {name} still present")
        want = {f"pvc-{uid}" for uid in self.expected.values()}
        pvs = Counter(
            pv["metadata"]["name"]
            for pv in self.sandbox.list_objects("persistentvolumes")
            if (pv["metadata"].get("annotations") or {}).get(ANN_PROVISIONED_BY) == PROVISIONER
        )
        if set(pvs) != want:
            wrong.append(f"PVs: extra {sorted(set(pvs) - want)} missing {sorted(want - set(pvs))}")
        # Volume names end in the claim uid (pvc-<uid>, or <prefix>_<ns>_<claim>_<uid>).
        volumes = Counter(
            v["name"][-36:] for v in self.sim.volumes() if v["name"][-36:] not in tolerated
        )
        uids = Counter(self.expected.values())
        if volumes != uids:
            extra = sorted((volumes - uids).elements())
            missing = sorted(set(uids) - set(volumes))
            wrong.append(f"Heketi volumes of claims: extra {extra} missing {missing}")
        # A claim still pending (Heketi failing) has its intent record and maybe its
        # Endpoints/Service (written once a volume exists): they go with the claim.
        pending = {c["metadata"]["uid"] for c in claims.values()} - set(self.expected.values())
        for resource in ("endpoints", "services"):
            owners = {
                obj["metadata"]["name"][-36:]  # <prefix>-<claim uid>
                for obj in self.sandbox.list_objects(resource, NAMESPACE)
                if LABEL_PROVISIONED_FOR_PVC in (obj["metadata"].get("labels") or {})
            }
            if owners - tolerated - pending != set(self.expected.values()):
                wrong.append(f"{resource} do not match the live claims")
        # Intent records (in the controller's namespace, here the same one) of claims
        # that are gone must go too; a bound claim's record goes at a later sweep.
        records = {
            obj["metadata"]["name"][-36:]  # heketi-intent-<claim uid>
            for obj in self.sandbox.list_objects("configmaps", NAMESPACE)
            if LABEL_INTENT in (obj["metadata"].get("labels") or {})
        }
        if records - tolerated - pending - set(self.expected.values()):
            wrong.append("intent records left for claims that are gone")
        return wrong

    def converge(self, timeout: float = 90.0) -> AuditReport:
        """Wait for the end state, then hold it to the audit: every expected claim Bound
        to ``pvc-<uid>`` exactly once, nothing left of deleted ones (no volume, no
        Endpoints, no Service), no orphans, no duplicates, no PV without its volume, no
        missing endpoints, GIDs unique. Nothing is tolerated.
        """
        tolerated: set[str] = set()
        wrong: list[str] = []

        def settled() -> bool:
            wrong[:] = self._settled(tolerated)
            return not wrong

        with contextlib.suppress(WaitTimeout):
            wait_for(settled, timeout, "convergence", interval=0.1)
        report = run_audit(self.kube, provisioner_name=PROVISIONER)
        assert not wrong, f"not converged after {timeout}s: {wrong[:10]}\naudit: {report}"
        assert report.problems == 0, report
        assert not report.errors, report.errors
        assert report.pvs == len(self.expected) == report.heketi_volumes
        # A clone keeps its source's GID (Heketi copies it); every other PV has its own.
        gids = [
            (pv["spec"].get("storageClassName"), pv["metadata"]["annotations"][ANN_GID])
            for pv in self.sandbox.list_objects("persistentvolumes")
            if ANN_CLONE_OF not in pv["metadata"]["annotations"]
        ]
        assert len(gids) == len(set(gids)), f"GID used twice: {Counter(gids).most_common(3)}"
        return report


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    created = World(tmp_path)
    try:
        yield created
    finally:
        created.close()


@pytest.fixture
def make_world(tmp_path: Path) -> Iterator[Callable[..., World]]:
    """For tests that need their own key or seed."""
    worlds: list[World] = []

    def make(**options: Any) -> World:
        directory = tmp_path / f"world{len(worlds)}"
        directory.mkdir()
        worlds.append(World(directory, **options))
        return worlds[-1]

    yield make
    for made in worlds:
        made.close()

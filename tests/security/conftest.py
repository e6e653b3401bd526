"""Security tests: what a tenant can do to the controller, done the way a tenant would.

The threat (DESIGN.md, the Trust invariant; COMPATIBILITY.md, Trust): a tenant may
create, change and delete objects in its own namespace and nowhere else. Nothing it
writes there may choose where the admin key goes, which Heketi volume is deleted, or
which GID a volume gets.

The bed: the Heketi simulator and the API sandbox run in the test process; the
controller is ``python -m provisioner run`` as a child process (a trimmed copy of the
reliability tier's ``ControllerProcess``), with ``POD_NAMESPACE=heketi-system`` and a
short orphan sweep (period and grace 0.5 s) so that a forged record would be acted
on within a couple of seconds. Three clients act on the API sandbox, each with its
own User-Agent so that the request log tells them from the controller:

* ``admin``: namespaces, the Heketi Secret in ``heketi-system``, StorageClasses, and
  the scheduler's step (``select_node``); never used for an attack;
* ``tenant`` (``tenant-a``): the attacker; a ``TenantClient`` refuses (as RBAC would)
  any write outside ``tenant-a``;
* ``victim`` (``tenant-b``): another tenant with claims of its own.

"Nothing happened" needs the sweeps to have run: ``World.after_sweeps`` waits until
the harm shows (then the test fails at once, on the harm) or the controller's
``heketi_provisioner_orphan_sweeps_total`` advanced by ``SWEEPS_AFTER_FORGERY``.
Waits are on conditions with deadlines, never sleeps. Nothing here depends on how a
fix is built: only on what a tenant can write and on what must not happen.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from heketi_client import HeketiClient, VolumeCreateRequest, VolumeInfo
from provisioner.gluster.annotations import (
    ANN_INTENT_CLAIM_NAME,
    ANN_INTENT_CLAIM_UID,
    ANN_INTENT_GID,
    ANN_INTENT_STORAGE_CLASS,
    ANN_INTENT_VOLUME_NAME,
    ANN_RESTURL,
    ANN_RESTUSER,
    ANN_SECRET_NAME,
    ANN_SECRET_NAMESPACE,
    LABEL_PROVISIONED_FOR_PVC,
)
from provisioner.k8s.errors import KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI, load_api_client
from provisioner.sandbox.heketi import HeketiSimulator
from provisioner.sandbox.kube import KubeSandbox
from provisioner.sandbox.waiting import wait_for
from tests.builders import claim_body, class_body, secret_body

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ControllerProcess:
    """``python -m provisioner run`` as a child process, as in a cluster: the minimal
    part of ``tests/reliability``'s ``ControllerProcess`` (copied rather than imported,
    so that this tier depends on nothing but the command line, the metrics endpoint
    and the public sandbox APIs). Output goes to files the tests can read."""

    def __init__(
        self, kubeconfig: str, log_dir: Path, *, metrics_port: int, env: dict[str, str],
        args: list[str],
    ) -> None:  # fmt: skip
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.metrics_port = metrics_port
        self.extra_env = env
        self.extra_args = args
        self.process: subprocess.Popen[bytes] | None = None
        self.out = log_dir / "controller.out"
        self.err = log_dir / "controller.err"

    def start(self) -> ControllerProcess:
        argv = [
            sys.executable, "-m", "provisioner", "run",
            "--kubeconfig", self.kubeconfig,
            "--metrics-address", f"127.0.0.1:{self.metrics_port}",
            "--log-format", "json",
            "--log-level", "info",
            "--shutdown-grace", "5",
            "--no-leader-election",
            *self.extra_args,
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEKETI_PROVISIONER_")}
        env.update(PYTHONUNBUFFERED="1", **self.extra_env)
        with self.out.open("wb") as stdout, self.err.open("wb") as stderr:
            self.process = subprocess.Popen(
                argv, stdout=stdout, stderr=stderr, env=env, cwd=REPO, start_new_session=True
            )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return "".join(f.read_text(errors="replace") for f in (self.out, self.err) if f.exists())

    def wait_started(self, timeout: float = 60.0) -> ControllerProcess:
        """Until the workers run (the ``controller.started`` log line, JSON or console)."""

        def started() -> bool:
            if not self.alive():
                raise AssertionError(f"controller exited early:\n{self.output()[-3000:]}")
            line = re.compile(r'(^|[" ])controller\.started([" ]|$)', re.M)
            return line.search(self.output()) is not None

        wait_for(started, timeout, "the controller to start")
        return self

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def http_get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")


PROVISIONER = "gluster.org/heketi"
CONTROLLER_NAMESPACE = "heketi-system"
TENANT = "tenant-a"
VICTIM = "tenant-b"
ADMIN_SECRET = "heketi-admin"
# Recognisable (and 32 bytes: HS256 wants no less).
ADMIN_KEY = "ADMIN-KEY-5ecur1ty-0123456789abcdef"
SERVICE_PREFIX = "glusterfs-dynamic"  # customepnameprefix default
SWEEP_PERIOD = 0.5
SWEEP_GRACE = 0.5
# "At least 3 completed sweeps past the grace" after the forgery; one more for the
# sweep that may have been running (with the older cache) when the forgery landed.
SWEEPS_AFTER_FORGERY = 4
SWEEP_METRIC = "heketi_provisioner_orphan_sweeps_total"

ADMIN_AGENT = "kubectl/v1.25.16 (security-tests) admin"
TENANT_AGENT = f"kubectl/v1.25.16 (security-tests) {TENANT}"
VICTIM_AGENT = f"kubectl/v1.25.16 (security-tests) {VICTIM}"
TEST_AGENTS = frozenset({ADMIN_AGENT, TENANT_AGENT, VICTIM_AGENT})

Obj = dict[str, Any]


def _client(kubeconfig: str, agent: str) -> KubeAPI:
    api = KubeAPI(load_api_client(kubeconfig))
    api.api_client.user_agent = agent  # KubeAPI sets the controller's; not ours
    return api


class TenantClient:
    """``kubectl`` as a user bound to one namespace: reads and writes there only.

    The sandbox has no RBAC, so the boundary is enforced here: a test that tried to
    write elsewhere would not be showing a tenant's attack.
    """

    def __init__(self, kubeconfig: str, namespace: str, agent: str) -> None:
        self.namespace = namespace
        self.api = _client(kubeconfig, agent)

    def _own(self, namespace: str | None) -> str:
        namespace = namespace or self.namespace
        assert namespace == self.namespace, f"a tenant of {self.namespace} cannot touch {namespace}"
        return namespace

    def get(self, resource: str, name: str, namespace: str | None = None) -> Obj:
        return self.api.get(resource, name, self._own(namespace))

    def patch(self, resource: str, name: str, patch: Obj) -> Obj:
        return self.api.patch(resource, name, patch, self.namespace)

    def create(self, resource: str, body: Obj) -> Obj:
        namespace = self._own((body.get("metadata") or {}).get("namespace"))
        return self.api.create(resource, body, namespace)

    def delete(self, resource: str, name: str) -> None:
        self.api.delete(resource, name, self.namespace)

    def claim(self, name: str, storage_class: str, size: str = "1Gi", **spec: Any) -> Obj:
        body = claim_body(name, self.namespace, storage_class, size=size, **spec)
        return self.create("persistentvolumeclaims", body)


def forged_record(
    template: Obj | None,
    *,
    namespace: str,
    claim_uid: str,
    claim_name: str,
    class_name: str,
    volume_name: str,
    gid: str,
    rest_url: str,
    rest_user: str | None = "admin",
    secret: tuple[str, str] | None = (CONTROLLER_NAMESPACE, ADMIN_SECRET),
) -> Obj:
    """A Service shaped like the controller's ``<prefix>-<claim uid>`` with an intent
    record saying what the tenant wants: ``kubectl get svc -o yaml``, edit, create.

    ``template`` is the tenant's own claim's Service as read from the API (None: built
    from scratch). Every record annotation is set explicitly, whatever the template
    carries, so the forgery does not depend on what the controller writes there.
    """
    body: Obj = copy.deepcopy(template) if template else {"apiVersion": "v1", "kind": "Service"}
    old = body.get("metadata") or {}
    annotations = {
        k: v
        for k, v in (old.get("annotations") or {}).items()
        if k not in (ANN_RESTUSER, ANN_SECRET_NAMESPACE, ANN_SECRET_NAME)
    }
    annotations.update(
        {
            ANN_INTENT_CLAIM_UID: claim_uid,
            ANN_INTENT_CLAIM_NAME: claim_name,
            ANN_INTENT_STORAGE_CLASS: class_name,
            ANN_INTENT_VOLUME_NAME: volume_name,
            ANN_INTENT_GID: gid,
            ANN_RESTURL: rest_url,
        }
    )
    if rest_user is not None:
        annotations[ANN_RESTUSER] = rest_user
    if secret is not None:
        annotations[ANN_SECRET_NAMESPACE], annotations[ANN_SECRET_NAME] = secret
    labels = dict(old.get("labels") or {})
    labels[LABEL_PROVISIONED_FOR_PVC] = claim_name
    body["metadata"] = {
        "name": f"{SERVICE_PREFIX}-{claim_uid}",
        "namespace": namespace,
        "labels": labels,
        "annotations": annotations,
    }
    spec = dict(body.get("spec") or {})
    # Server-assigned fields would be refused on create (or pin a taken address).
    for assigned in ("clusterIP", "clusterIPs"):
        spec.pop(assigned, None)
    spec.setdefault("ports", [{"port": 1, "protocol": "TCP"}])
    body["spec"] = spec
    body.pop("status", None)
    return body


# -- a server the tenant runs, pretending to be Heketi --------------------------------


@dataclass
class Captured:
    method: str
    path: str
    authorization: str | None
    claims: Obj | None  # the JWT's claims if it verifies with the admin key


@dataclass
class CaptureServer:
    """Records every request; answers as Heketi would, and tempts the controller to
    sign another path (a DELETE's 202 points ``Location`` at ``/any/path``)."""

    volume: Obj  # the Heketi volume JSON it claims to hold
    admin_key: str = ADMIN_KEY
    requests: list[Captured] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> CaptureServer:
        capture = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(
                self, status: int, body: Any = None, headers: dict[str, str] | None = None
            ) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if body is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                capture.record(self.command, self.path, self.headers.get("Authorization"))

            def do_GET(self) -> None:
                self._record()
                volume_path = f"/volumes/{capture.volume['id']}"
                if self.path == "/volumes":
                    self._answer(200, {"volumes": [capture.volume["id"]]})
                elif self.path == volume_path:
                    self._answer(200, capture.volume)
                elif self.path == "/hello":
                    self._answer(200, "Hello from Heketi")
                else:  # a queue entry: done
                    self._answer(204)

            def do_DELETE(self) -> None:
                self._record()
                self._answer(202, headers={"Location": "/any/path"})

            def do_POST(self) -> None:
                self._record()
                self._answer(202, headers={"Location": "/any/path"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def record(self, method: str, path: str, authorization: str | None) -> None:
        claims = None
        if authorization and authorization[:7].lower() == "bearer ":
            import jwt

            try:
                claims = jwt.decode(
                    authorization[7:], self.admin_key, algorithms=["HS256"],
                    options={"verify_exp": False, "verify_iat": False},
                )  # fmt: skip
            except jwt.PyJWTError:
                claims = None
        with self._lock:
            self.requests.append(Captured(method, path, authorization, claims))

    def seen(self) -> list[Captured]:
        with self._lock:
            return list(self.requests)

    def summary(self) -> str:
        seen = self.seen()
        signed = sum(1 for r in seen if r.claims is not None)
        routes = sorted({f"{r.method} {r.path}" for r in seen})
        return f"{len(seen)} requests ({signed} carrying a JWT signed with the admin key): {routes}"


# -- the world ----------------------------------------------------------------------


class World:
    """Heketi simulator, API sandbox, the three clients and the controller."""

    def __init__(self, tmp: Path, *, kube_version: str = "1.25.16") -> None:
        self.tmp = tmp
        self.sim = HeketiSimulator(admin_key=ADMIN_KEY, seed=11)
        self.sandbox = KubeSandbox(version=kube_version, kubeconfig_path=tmp / "kubeconfig")
        self.sim.start()
        self.sandbox.start()
        assert self.sandbox.kubeconfig_path is not None
        self.kubeconfig: str = self.sandbox.kubeconfig_path
        self.admin = _client(self.kubeconfig, ADMIN_AGENT)
        self.tenant = TenantClient(self.kubeconfig, TENANT, TENANT_AGENT)
        self.victim = TenantClient(self.kubeconfig, VICTIM, VICTIM_AGENT)
        self.captures: list[CaptureServer] = []
        self.controller: ControllerProcess | None = None
        for namespace in (CONTROLLER_NAMESPACE, TENANT, VICTIM):
            self.admin.create(
                "namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            )
        self.admin.create(
            "secrets",
            secret_body(ADMIN_SECRET, CONTROLLER_NAMESPACE, ADMIN_KEY),
            CONTROLLER_NAMESPACE,
        )

    def close(self) -> None:
        if self.controller is not None:
            self.controller.kill()
        for capture in self.captures:
            capture.stop()
        self.sandbox.stop()
        self.sim.stop()

    # -- admin steps --------------------------------------------------------------

    def storage_class(
        self, name: str, *, binding_mode: str | None = None, expandable: bool = False
    ) -> str:
        body = class_body(
            name,
            self.sim.url,
            secret=(CONTROLLER_NAMESPACE, ADMIN_SECRET),
            provisioner=PROVISIONER,
            binding_mode=binding_mode or None,
        )
        if expandable:
            body["allowVolumeExpansion"] = True
        self.admin.create("storageclasses", body)
        return name

    def start_controller(self, *extra_args: str) -> ControllerProcess:
        """``heketi-provisioner run`` in its own namespace, sweeping every 0.5 s."""
        controller = ControllerProcess(
            self.kubeconfig,
            self.tmp,
            metrics_port=free_port(),
            env={"POD_NAMESPACE": CONTROLLER_NAMESPACE},
            args=[
                "--provisioner-name", PROVISIONER,
                "--orphan-sweep-period", str(SWEEP_PERIOD),
                "--orphan-grace-seconds", str(SWEEP_GRACE),
                *extra_args,
            ],
        )  # fmt: skip
        self.controller = controller.start()  # known before the wait: close() kills it
        controller.wait_started()
        return controller

    def restart_controller(self, *extra_args: str) -> ControllerProcess:
        """SIGKILL the controller and start a fresh process (nothing kept in memory)."""
        if self.controller is not None:
            self.controller.kill()
        return self.start_controller(*extra_args)

    def warning_or_pv(self, namespace: str, claim: str, timeout: float = 30.0) -> tuple[str, Obj]:
        """Wait until the claim has a Warning event or a PV; (message or "", PV or {})."""
        found = self.get("persistentvolumeclaims", claim, namespace) or {}
        uid = str((found.get("metadata") or {}).get("uid"))

        def look() -> tuple[str, Obj] | None:
            pv = self.get("persistentvolumes", f"pvc-{uid}")
            for event in self.sandbox.list_objects("events", namespace):
                if (event.get("involvedObject") or {}).get("uid") == uid and event.get(
                    "type"
                ) == "Warning":
                    return str(event.get("message")), pv or {}
            return ("", pv) if pv else None

        return wait_for(look, timeout, f"a Warning event or a PV for {namespace}/{claim}")

    def gid_of(self, namespace: str, claim: str) -> int:
        pv = self.bound_pv(namespace, claim)
        return int(pv["metadata"]["annotations"]["pv.beta.kubernetes.io/gid"])

    def gone(self, resource: str, name: str, namespace: str | None = None) -> None:
        wait_for(
            lambda: self.get(resource, name, namespace) is None, 30.0, f"{resource} {name} gone"
        )

    def operator_volume(self, name: str = "operator-archive") -> VolumeInfo:
        """A volume an operator made with heketi-cli, outside Kubernetes."""
        with HeketiClient(self.sim.url, user="admin", key=ADMIN_KEY) as heketi:
            volume: VolumeInfo = heketi.create_volume(VolumeCreateRequest(size=1, name=name))
            return volume

    def capture_server(self, volume: Obj) -> CaptureServer:
        server = CaptureServer(volume=volume).start()
        self.captures.append(server)
        return server

    # -- looking (as the admin / the test, never as the tenant) --------------------

    def get(self, resource: str, name: str, namespace: str | None = None) -> Obj | None:
        try:
            return self.admin.get(resource, name, namespace)
        except KubeNotFound:
            return None

    def bound_pv(self, namespace: str, claim: str, timeout: float = 30.0) -> Obj:
        def check() -> Obj | None:
            found = self.get("persistentvolumeclaims", claim, namespace)
            if not found or (found.get("status") or {}).get("phase") != "Bound":
                return None
            volume = (found.get("spec") or {}).get("volumeName")
            return self.get("persistentvolumes", volume) if volume else None

        try:
            return wait_for(check, timeout, f"claim {namespace}/{claim} to be Bound")
        except AssertionError as err:
            tail = self.controller.output()[-3000:] if self.controller else ""
            raise AssertionError(f"{err}\ncontroller output (tail):\n{tail}") from None

    def heketi_volume(self, *, volume_id: str | None = None, name: str | None = None) -> Obj | None:
        for volume in self.sim.volumes():
            if volume["id"] == volume_id or volume["name"] == name:
                return volume
        return None

    def own_service(self, client: TenantClient, claim: Obj) -> Obj:
        """The Service the controller wrote for a claim, read as its tenant reads it."""
        name = f"{SERVICE_PREFIX}-{claim['metadata']['uid']}"

        def look() -> Obj | None:
            try:
                return client.get("services", name)
            except KubeNotFound:
                return None

        return wait_for(look, 30.0, f"Service {client.namespace}/{name}")

    def sweeps(self) -> float | None:
        """The controller's completed-sweep counter; None while it has none."""
        if self.controller is None:
            return None
        try:
            status, text = self.controller.http_get("/metrics")
        except OSError:
            return None
        if status != 200:
            return None
        pattern = re.compile(rf"^{SWEEP_METRIC}(?:\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
        values = [float(v) for v in pattern.findall(text)]
        return sum(values) if values else None

    def after_sweeps(self, harm: Callable[[], str | None], *, timeout: float = 20.0) -> str:
        """Wait until ``harm()`` reports something (returned at once) or the controller
        completed ``SWEEPS_AFTER_FORGERY`` sweeps since now, past the grace; returns a
        description of which, for the assertion messages."""
        started = time.monotonic()
        baseline = self.sweeps()

        def check() -> str | None:
            found = harm()
            elapsed = time.monotonic() - started
            if found:
                return f"HARM after {elapsed:.1f}s ({self._sweep_text(baseline)}): {found}"
            now = self.sweeps()
            if (
                now is not None
                and now >= (baseline or 0.0) + SWEEPS_AFTER_FORGERY
                and elapsed >= SWEEP_GRACE * 2
            ):
                return f"no harm after {elapsed:.1f}s ({self._sweep_text(baseline)})"
            return None

        return wait_for(
            check,
            timeout,
            f"either harm or {SWEEPS_AFTER_FORGERY} completed orphan sweeps "
            f"({SWEEP_METRIC} at the controller's /metrics; {self._sweep_text(baseline)})",
        )

    def _sweep_text(self, baseline: float | None) -> str:
        now = self.sweeps()
        if baseline is None and now is None:
            return f"{SWEEP_METRIC} not exported by this build"
        return f"{SWEEP_METRIC} {baseline} -> {now}"

    def controller_secret_reads(self) -> list[str]:
        """Every Secret request the controller made (anything not from a test client)."""
        return [
            f"{r.verb} secrets {r.namespace or '*'}/{r.name or '*'} -> {r.status}"
            for r in self.sandbox.request_log
            if r.resource == "secrets" and r.user_agent not in TEST_AGENTS
        ]

    def controller_said(self, needle: str) -> list[str]:
        """For failure messages: the controller's log lines naming ``needle`` that
        speak of reclaiming or deleting (waits up to 3 s for one; no verdict)."""

        def lines() -> list[str]:
            out = self.controller.output() if self.controller else ""
            return [
                line[:240]
                for line in out.splitlines()
                if needle in line and re.search("reclaim|delet", line, re.IGNORECASE)
            ]

        with contextlib.suppress(AssertionError):
            wait_for(lines, 3.0)
        return lines()[-2:]


def random_uid() -> str:
    return str(uuid.uuid4())


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    created = World(tmp_path)
    try:
        yield created
    finally:
        created.close()


@dataclass
class Bed:
    """The common start of the forged-record attacks: a class, the controller, the
    tenant's own bound claim (whose Service is the forgery's template) and a victim
    claim in tenant-b, bound."""

    world: World
    storage_class: str
    own_claim: Obj
    own_service: Obj
    victim_claim: Obj
    victim_pv: Obj


@pytest.fixture
def bed(world: World) -> Bed:
    storage_class = world.storage_class("gluster")
    world.start_controller()
    own = world.tenant.claim("mine", storage_class)
    theirs = world.victim.claim("data", storage_class)
    world.bound_pv(TENANT, "mine")
    victim_pv = world.bound_pv(VICTIM, "data")
    return Bed(
        world=world,
        storage_class=storage_class,
        own_claim=own,
        own_service=world.own_service(world.tenant, own),
        victim_claim=theirs,
        victim_pv=victim_pv,
    )

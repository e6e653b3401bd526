"""A controller wired as ``heketi-provisioner run`` wires it, against the sandboxes, with
its ``/metrics``, ``/healthz`` and ``/readyz`` server on a loopback port.

The test acts as a user through its own API client, whose user agent is not the
controller's, so the request log tells the two apart.
"""

from __future__ import annotations

import itertools
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from provisioner.app import build_controller
from provisioner.config import Settings
from provisioner.controller.loop import Controller
from provisioner.k8s.errors import KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI, load_api_client
from provisioner.observability import HealthServer, start_health_server
from provisioner.sandbox.stack import SandboxStack, StackOptions
from provisioner.sandbox.waiting import wait_for
from tests.builders import claim_body, class_body, secret_body

NAMESPACE = "default"
ADMIN_KEY = "observability-admin-key-0123456789"
USER_AGENT = "observability-tests/1"
FAST = Settings(
    workers=4,
    backoff_base=0.05,
    backoff_cap=1.0,
    resync_period=600.0,
    watch_timeout=60,
    metrics_address="",
    shutdown_grace=5.0,
    orphan_sweep_period=0.0,
)
_names = itertools.count(1)


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def user_api(kubeconfig: str) -> KubeAPI:
    """An API client that does not pass for the controller in the request log."""
    api = KubeAPI(load_api_client(kubeconfig), request_timeout=10.0)
    api.api_client.user_agent = USER_AGENT
    return api


class World:
    def __init__(self, stack: SandboxStack, settings: Settings) -> None:
        self.stack = stack
        self.settings = replace(settings, kubeconfig=stack.kubeconfig_path)
        self.sandbox = stack.kube
        self.sim = stack.heketi
        self.user = user_api(stack.kubeconfig_path)
        self.controller: Controller | None = None
        self.health: HealthServer | None = None

    wait_for = staticmethod(wait_for)

    def build(self, **overrides: Any) -> Controller:
        """The controller (not started) and its health server on a free loopback port."""
        self.controller = build_controller(replace(self.settings, **overrides))
        self.health = start_health_server(
            "127.0.0.1:0",
            metrics=self.controller.metrics,
            ready=self.controller.ready,
            problems=self.controller.problems,
        )
        return self.controller

    def get(self, path: str) -> tuple[int, str]:
        assert self.health is not None
        return http_get(self.health.port, path)

    def metrics(self) -> str:
        status, body = self.get("/metrics")
        assert status == 200
        return body

    def secret(self) -> str:
        name = f"heketi-{next(_names)}"
        self.user.create("secrets", secret_body(name, NAMESPACE, ADMIN_KEY), NAMESPACE)
        return name

    def storage_class(
        self, *, secret: str | None = None, provisioner: str | None = None, **params: str | None
    ) -> str:
        name = f"gluster-{next(_names)}"
        body = class_body(
            name,
            self.sim.url,
            secret=(NAMESPACE, secret or self.secret()),
            provisioner=provisioner or self.settings.provisioner_name,
            **params,
        )
        self.user.create("storageclasses", body)
        return name

    def claim(self, storage_class: str, **spec: Any) -> dict[str, Any]:
        body = claim_body(f"claim-{next(_names)}", NAMESPACE, storage_class, **spec)
        return self.user.create("persistentvolumeclaims", body, NAMESPACE)

    def find(self, resource: str, name: str, namespace: str | None = None) -> Any:
        try:
            return self.user.get(resource, name, namespace)
        except KubeNotFound:
            return None

    def bound_pv(self, claim: dict[str, Any]) -> dict[str, Any]:
        def check() -> Any:
            fresh = self.find("persistentvolumeclaims", claim["metadata"]["name"], NAMESPACE)
            if not fresh or (fresh.get("status") or {}).get("phase") != "Bound":
                return None
            return self.find("persistentvolumes", fresh["spec"]["volumeName"])

        return wait_for(check, what=f"claim {claim['metadata']['name']} Bound")

    def delete_claim_and_wait(self, claim: dict[str, Any], pv: dict[str, Any]) -> None:
        self.user.delete("persistentvolumeclaims", claim["metadata"]["name"], NAMESPACE)
        name = pv["metadata"]["name"]
        wait_for(lambda: self.find("persistentvolumes", name) is None, what=f"{name} deleted")

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop(grace=2.0)
        if self.health is not None:
            self.health.stop()


def _world(
    tmp_path: Path, heketi_latency: float = 0.0, kube_version: str | None = None
) -> Iterator[World]:
    extra = {} if kube_version is None else {"kube_version": kube_version}
    stack = SandboxStack(
        StackOptions(
            kubeconfig_out=str(tmp_path / "kubeconfig"),
            heketi_admin_key=ADMIN_KEY,
            heketi_latency=heketi_latency,
            **extra,
            with_controller=False,
            settings=FAST,
        )
    )
    stack.start()
    made = World(stack, FAST)
    try:
        yield made
    finally:
        made.stop()
        stack.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    yield from _world(tmp_path)


@pytest.fixture
def current_world(tmp_path: Path) -> Iterator[World]:
    """A 1.37 API server: resizes are ours there (1.25's controller manager grows
    glusterfs PVs itself)."""
    directory = tmp_path / "current"
    directory.mkdir()
    yield from _world(directory, kube_version="1.37.2")


@pytest.fixture
def slow_world(tmp_path: Path) -> Iterator[World]:
    """Heketi operations take a second: there is work in flight to watch."""
    yield from _world(tmp_path, heketi_latency=1.0)

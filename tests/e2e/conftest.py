"""End-to-end: the controller, the Heketi simulator and the API sandbox in one process,
talking HTTP on loopback exactly as in a cluster. Tests act only through the API (as
a user would) and wait on conditions with deadlines, never on sleeps."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from provisioner.app import build_controller
from provisioner.config import Settings
from provisioner.controller.loop import Controller
from provisioner.k8s.errors import KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI, load_api_client
from provisioner.sandbox.stack import SandboxStack, StackOptions
from provisioner.sandbox.waiting import wait_for
from tests.builders import claim_body, class_body, secret_body

PROVISIONER = "gluster.org/heketi"
NAMESPACE = "default"
ADMIN_KEY = "e2e-admin-key-0123456789abcdef"

_names = itertools.count(1)


FAST = Settings(
    workers=16,
    backoff_base=0.05,
    backoff_cap=1.0,
    resync_period=600.0,
    watch_timeout=60,
    metrics_address="",
    shutdown_grace=5.0,
)


class Cluster:
    """The running stack plus what a test needs to act like a user and look inside."""

    def __init__(self, stack: SandboxStack, settings: Settings) -> None:
        self.stack = stack
        self.settings = settings
        self.sim = stack.heketi
        self.sandbox = stack.kube
        self.kube = KubeAPI(load_api_client(stack.kubeconfig_path))
        self.controller: Controller | None = stack.controller

    wait_for = staticmethod(wait_for)

    # -- the controller --------------------------------------------------------

    def start_controller(self, **overrides: Any) -> Controller:
        """A new controller process, wired as the stack (and ``run``) wire it."""
        settings = replace(self.settings, kubeconfig=self.stack.kubeconfig_path, **overrides)
        self.controller = build_controller(settings)
        self.controller.start()
        return self.controller

    def stop_controller(self, grace: float = 5.0) -> None:
        if self.controller is not None:
            self.controller.stop(grace=grace)
            self.controller = None

    # -- objects -----------------------------------------------------------------

    def secret(self, *, key: str = ADMIN_KEY, type_: str = "kubernetes.io/glusterfs",
               entry: str = "key") -> str:  # fmt: skip
        name = f"heketi-{next(_names)}"
        body = secret_body(name, NAMESPACE, key, type_=type_, entry=entry)
        self.kube.create("secrets", body, NAMESPACE)
        return name

    def storage_class(
        self,
        *,
        secret: str | bool | None = True,
        reclaim: str = "Delete",
        provisioner: str = PROVISIONER,
        expandable: bool = False,
        **params: str,
    ) -> str:
        """``expandable``: ``allowVolumeExpansion: true``."""
        name = f"gluster-{next(_names)}"
        if secret is True:
            secret = self.secret()
        body = class_body(
            name,
            self.sim.url,
            secret=(NAMESPACE, secret) if isinstance(secret, str) else None,
            provisioner=provisioner,
            reclaim=reclaim,
            **params,
        )
        if expandable:
            body["allowVolumeExpansion"] = True
        self.kube.create("storageclasses", body)
        return name

    def claim(self, storage_class: str, *, size: str = "1Gi", **spec: Any) -> dict[str, Any]:
        body = claim_body(f"claim-{next(_names)}", NAMESPACE, storage_class, size=size, **spec)
        return self.kube.create("persistentvolumeclaims", body, NAMESPACE)

    def get(self, resource: str, name: str, namespace: str | None = None) -> dict | None:
        try:
            return self.kube.get(resource, name, namespace)
        except KubeNotFound:
            return None

    def fresh_claim(self, claim: dict) -> dict | None:
        return self.get("persistentvolumeclaims", claim["metadata"]["name"], NAMESPACE)

    def bound_pv(self, claim: dict, timeout: float = 20.0) -> dict[str, Any]:
        """Wait until the claim is Bound; return its PV."""

        def check() -> dict | None:
            fresh = self.fresh_claim(claim)
            if not fresh or (fresh.get("status") or {}).get("phase") != "Bound":
                return None
            return self.get("persistentvolumes", fresh["spec"]["volumeName"])

        return wait_for(check, timeout, f"claim {claim['metadata']['name']} to be Bound")

    def events(self, obj: dict) -> list[dict[str, Any]]:
        uid = obj["metadata"]["uid"]
        namespace = obj["metadata"].get("namespace") or NAMESPACE
        return [
            e
            for e in self.sandbox.list_objects("events", namespace)
            if (e.get("involvedObject") or {}).get("uid") == uid
        ]

    def warning(self, obj: dict, timeout: float = 10.0) -> str:
        """Wait for a Warning event on ``obj``; return its message."""

        def check() -> str | None:
            for event in self.events(obj):
                if event.get("type") == "Warning":
                    return str(event.get("message"))
            return None

        return wait_for(check, timeout, f"a Warning event on {obj['metadata']['name']}")

    def delete_claim(self, claim: dict) -> None:
        self.kube.delete("persistentvolumeclaims", claim["metadata"]["name"], NAMESPACE)

    def heketi_counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for record in self.sim.requests:
            route = record.route
            if not route.startswith(f"{record.method} "):
                route = f"{record.method} {route}"
            counts[f"{route} {'dropped' if record.status is None else record.status}"] += 1
        return counts

    def volume_names(self) -> list[str]:
        return sorted(v["name"] for v in self.sim.volumes())


@pytest.fixture
def cluster_factory(tmp_path: Any) -> Iterator[Callable[..., Cluster]]:
    clusters: list[Cluster] = []

    def make(
        *, kube_version: str = "1.25.16", with_controller: bool = True, **overrides: Any
    ) -> Cluster:
        settings = replace(FAST, **overrides)
        stack = SandboxStack(
            StackOptions(
                kubeconfig_out=str(tmp_path / f"kubeconfig-{len(clusters)}"),
                kube_version=kube_version,
                heketi_admin_key=ADMIN_KEY,
                with_controller=with_controller,
                settings=settings,
            )
        )
        stack.start()
        clusters.append(Cluster(stack, settings))
        return clusters[-1]

    yield make
    for cluster in reversed(clusters):
        if cluster.controller is not cluster.stack.controller:
            cluster.stop_controller(grace=1.0)
        cluster.stack.stop()


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: Any) -> Iterator[Cluster]:
    """One stack for a module of tests that do not disturb each other (e.g. a table)."""
    stack = SandboxStack(
        StackOptions(
            kubeconfig_out=str(tmp_path_factory.mktemp("kube") / "kubeconfig"),
            heketi_admin_key=ADMIN_KEY,
            settings=FAST,
        )
    )
    stack.start()
    try:
        yield Cluster(stack, FAST)
    finally:
        stack.stop()


@pytest.fixture
def cluster(cluster_factory: Callable[..., Cluster]) -> Cluster:
    return cluster_factory()

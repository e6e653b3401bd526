"""A real Heketi simulator and a real Kubernetes API sandbox, both over loopback HTTP,
and a ``GlusterProvisioner`` driven directly (no controller) against them."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from heketi_client.retries import RetryPolicy
from provisioner.controller.contract import Outcome, ProvisionError
from provisioner.gluster.pool import HeketiPool
from provisioner.gluster.provisioner import GlusterProvisioner
from provisioner.k8s.kubeapi import KubeAPI, load_api_client
from provisioner.sandbox.heketi import HeketiSimulator
from provisioner.sandbox.kube import KubeSandbox
from tests.builders import claim_body, class_body, secret_body

ADMIN_KEY = "admin-Key-7f3c9e1b"
USER_KEY = "user-Key-44aa0d2e"
PROVISIONER = "gluster.org/heketi-test"
NAMESPACE = "default"

_names = itertools.count(1)


@pytest.fixture
def sim() -> Iterator[HeketiSimulator]:
    with HeketiSimulator(admin_key=ADMIN_KEY, user_key=USER_KEY, seed=7) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def sandbox() -> Iterator[KubeSandbox]:
    kube = KubeSandbox()
    kube.start()
    try:
        yield kube
    finally:
        kube.stop()


@pytest.fixture(scope="module")
def kube(sandbox: KubeSandbox) -> KubeAPI:
    return KubeAPI(load_api_client(sandbox.kubeconfig_path))


def fast_pool(concurrency: int = 8) -> HeketiPool:
    """Few, short retries: an unreachable Heketi should fail the attempt quickly."""
    return HeketiPool(
        concurrency=concurrency,
        timeout=(2.0, 10.0),
        operation_timeout=30.0,
        retry=RetryPolicy(attempts=2, backoff=0.01, max_backoff=0.05),
    )


def request_counts(sim: HeketiSimulator) -> Counter[str]:
    # Built from the records rather than ``sim.request_counts()`` so that the method is
    # always part of the key, whichever way the simulator spells its routes.
    counts: Counter[str] = Counter()
    for record in sim.requests:
        route = record.route
        if not route.startswith(f"{record.method} "):
            route = f"{record.method} {route}"
        counts[f"{route} {'dropped' if record.status is None else record.status}"] += 1
    return counts


class World:
    """Helpers to make classes, secrets and claims in the sandbox."""

    def __init__(self, sim: HeketiSimulator, sandbox: KubeSandbox, kube: KubeAPI) -> None:
        self.sim = sim
        self.sandbox = sandbox
        self.kube = kube
        # The controller's own namespace (intent records), one per test: the API
        # sandbox is shared by the module.
        self.control_ns = f"heketi-system-{next(_names)}"
        kube.create("namespaces", {"metadata": {"name": self.control_ns}})

    def records(self) -> list[dict[str, Any]]:
        """The intent records (ConfigMaps) in this test's controller namespace."""
        return self.sandbox.list_objects("configmaps", self.control_ns)

    def lookup_class(self, name: str) -> dict[str, Any] | None:
        return self.sandbox.get_object("storageclasses", None, name)

    def provisioner(self, **kwargs: Any) -> GlusterProvisioner:
        kwargs.setdefault("pool", fast_pool(kwargs.pop("heketi_concurrency", 8)))
        kwargs.setdefault("intent_namespace", self.control_ns)
        return GlusterProvisioner(
            kube=self.kube,
            provisioner_name=PROVISIONER,
            class_lookup=self.lookup_class,
            **kwargs,
        )

    def secret(
        self, *, key: str = ADMIN_KEY, type_: str = "kubernetes.io/glusterfs", entry: str = "key"
    ) -> str:
        name = f"heketi-secret-{next(_names)}"
        body = secret_body(name, NAMESPACE, key, type_=type_, entry=entry)
        self.kube.create("secrets", body, NAMESPACE)
        return name

    def storage_class(
        self,
        *,
        secret: str | bool | None = True,
        reclaim: str = "Delete",
        **params: str,
    ) -> dict[str, Any]:
        name = f"gluster-{next(_names)}"
        if secret is True:
            secret = self.secret()
        body = class_body(
            name,
            self.sim.url,
            secret=(NAMESPACE, secret) if isinstance(secret, str) else None,
            provisioner=PROVISIONER,
            reclaim=reclaim,
            **params,
        )
        return self.kube.create("storageclasses", body)

    def claim(self, storage_class: dict[str, Any], *, size: str = "1Gi", **spec: Any) -> dict:
        class_name = storage_class["metadata"]["name"]
        body = claim_body(
            f"claim-{next(_names)}", NAMESPACE, class_name, size=size,
            access_modes=("ReadWriteMany",), **spec,
        )  # fmt: skip
        return self.kube.create("persistentvolumeclaims", body, NAMESPACE)

    @staticmethod
    def provision_with_retries(
        gluster: GlusterProvisioner, claim: dict, sc: dict, attempts: int = 3
    ) -> dict[str, Any]:
        for _ in range(attempts - 1):
            try:
                return gluster.provision(claim, sc)
            except ProvisionError as err:
                if err.outcome is not Outcome.RETRY:
                    raise
        return gluster.provision(claim, sc)

    def heketi_requests(self) -> int:
        return len(self.sim.requests)

    def counts(self) -> dict[str, int]:
        """Requests keyed "METHOD route status", e.g. "GET /queue/{id} 303"."""
        return dict(request_counts(self.sim))


@pytest.fixture
def world(sim: HeketiSimulator, sandbox: KubeSandbox, kube: KubeAPI) -> World:
    return World(sim, sandbox, kube)


@pytest.fixture
def make(world: World) -> Callable[..., GlusterProvisioner]:
    return world.provisioner

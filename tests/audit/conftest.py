"""A real Heketi simulator and Kubernetes API sandbox per test, populated the way the
provisioner populates them (GlusterProvisioner writes Heketi volumes and endpoints,
the PV is created as the controller creates it), so the audit reads real state."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from heketi_client import HeketiClient, VolumeCreateRequest, VolumeInfo
from heketi_client.retries import RetryPolicy
from provisioner.gluster.pool import HeketiPool
from provisioner.gluster.provisioner import GlusterProvisioner
from provisioner.k8s.kubeapi import KubeAPI, load_api_client
from provisioner.sandbox.heketi import HeketiSimulator
from provisioner.sandbox.kube import KubeSandbox
from tests.builders import claim_body, class_body, secret_body

ADMIN_KEY = "audit-Admin-Key-5d1e77c0-94b2f6a8e3c1d0ff"
PROVISIONER = "gluster.org/heketi-audit-test"
NAMESPACE = "default"

_names = itertools.count(1)


def fast_pool() -> HeketiPool:
    """An unreachable Heketi must fail the audit quickly, not after long retries."""
    return HeketiPool(
        timeout=(2.0, 10.0),
        operation_timeout=30.0,
        retry=RetryPolicy(attempts=1, backoff=0.01, max_backoff=0.05),
    )


class Cluster:
    """Both sides of one installation, and the moves that make them disagree."""

    def __init__(self, sim: HeketiSimulator, sandbox: KubeSandbox) -> None:
        self.sim = sim
        self.sandbox = sandbox
        self.kube = KubeAPI(load_api_client(sandbox.kubeconfig_path))
        self.heketi = HeketiClient(sim.url, user="admin", key=ADMIN_KEY)
        self.gluster = GlusterProvisioner(
            kube=self.kube,
            provisioner_name=PROVISIONER,
            class_lookup=lambda name: sandbox.get_object("storageclasses", None, name),
            pool=fast_pool(),
        )

    def secret(self) -> str:
        name = f"heketi-secret-{next(_names)}"
        self.kube.create("secrets", secret_body(name, NAMESPACE, ADMIN_KEY), NAMESPACE)
        return name

    def storage_class(self, *, provisioner: str = PROVISIONER, **params: str) -> dict[str, Any]:
        body = class_body(
            f"gluster-{next(_names)}",
            self.sim.url,
            secret=(NAMESPACE, self.secret()),
            provisioner=provisioner,
            **params,
        )
        return self.kube.create("storageclasses", body)

    def claim(self, storage_class: dict[str, Any]) -> dict[str, Any]:
        class_name = storage_class["metadata"]["name"]
        body = claim_body(
            f"claim-{next(_names)}", NAMESPACE, class_name, access_modes=("ReadWriteMany",)
        )
        return self.kube.create("persistentvolumeclaims", body, NAMESPACE)

    def provisioned(self, storage_class: dict[str, Any]) -> tuple[dict, dict]:
        """A claim, its Heketi volume, Endpoints/Service and PV: the controller's work."""
        claim = self.claim(storage_class)
        pv = self.kube.create("persistentvolumes", self.gluster.provision(claim, storage_class))
        return claim, pv

    def heketi_volume(self, name: str | None) -> VolumeInfo:
        """A volume made behind the provisioner's back (or by a crashed attempt)."""
        return self.heketi.create_volume(VolumeCreateRequest(size=1, name=name))


@pytest.fixture
def sim() -> Iterator[HeketiSimulator]:
    with HeketiSimulator(admin_key=ADMIN_KEY, seed=11) as simulator:
        yield simulator


@pytest.fixture
def sandbox() -> Iterator[KubeSandbox]:
    with KubeSandbox() as kube:
        yield kube


@pytest.fixture
def cluster(sim: HeketiSimulator, sandbox: KubeSandbox) -> Cluster:
    return Cluster(sim, sandbox)

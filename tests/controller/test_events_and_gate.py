"""Events are not spammed on retries/resyncs; the 1.26+ version gate warns once per claim."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from provisioner.config import Settings
from provisioner.controller.contract import InvalidInput, ProvisionError
from provisioner.controller.loop import Controller
from provisioner.gluster.gate import GlusterfsGate
from provisioner.k8s.kubeapi import KubeAPI, load_api_client
from provisioner.k8s.versions import ServerVersion
from provisioner.sandbox.kube import KubeSandbox
from tests.builders import claim_body, class_body

ME = "gluster.org/heketi"
NS = "default"


class FailingProvisioner:
    """Pure controller behaviour: a backend that always fails the same way (and has the
    Gluster backend's version gate, so the controller's handling of a Gate shows)."""

    def __init__(self, error: ProvisionError) -> None:
        self.error = error
        self.calls = 0
        self.lock = threading.Lock()
        self.version_gate = GlusterfsGate()

    def provision(self, claim: dict[str, Any], storage_class: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.calls += 1
        raise self.error

    def delete(self, pv: dict[str, Any]) -> None:
        pass

    def gate(self, storage_class: dict[str, Any], server: ServerVersion) -> str | None:
        return self.version_gate.message(storage_class, server)


def make_claim(kube: KubeAPI, name: str = "c1") -> None:
    kube.create("storageclasses", class_body("gold", "http://x", provisioner=ME))
    kube.create("persistentvolumeclaims", claim_body(name, NS, "gold"), NS)


def events(kube_sandbox: KubeSandbox, reason: str) -> list[dict[str, Any]]:
    return [e for e in kube_sandbox.list_objects("events", NS) if e.get("reason") == reason]


@pytest.fixture
def start_controller(kube: KubeAPI) -> Iterator[Any]:
    started: list[Controller] = []

    def start(provisioner: Any, **settings: Any) -> Controller:
        ctl = Controller(
            kube,
            provisioner,
            Settings(backoff_base=0.01, backoff_cap=0.05, resync_period=3600, **settings),
        )
        ctl.start(sync_timeout=10)
        started.append(ctl)
        return ctl

    yield start
    for ctl in started:
        ctl.stop(grace=5)


def test_invalid_input_is_reported_once_across_resyncs(
    kube: KubeAPI, kube_sandbox: KubeSandbox, start_controller, wait_for
) -> None:
    backend = FailingProvisioner(InvalidInput('parameter "volumetype": unknown type "raid5"'))
    ctl = start_controller(backend)
    make_claim(kube)
    for expected in (1, 2, 3, 4):
        if expected > 1:
            ctl.resync()  # each resync tries an invalid claim again, quietly
        wait_for(lambda expected=expected: backend.calls == expected, what=f"call {expected}")
        assert ctl.queue.wait_idle(5)
    assert ctl.queue.wait_idle(5)
    failed = events(kube_sandbox, "ProvisioningFailed")
    assert len(failed) == 1
    assert failed[0]["type"] == "Warning"
    assert "raid5" in failed[0]["message"]
    assert failed[0]["involvedObject"]["name"] == "c1"
    assert failed[0]["source"]["component"] == ME
    assert len(events(kube_sandbox, "Provisioning")) == 1
    assert kube_sandbox.list_objects("persistentvolumes") == []


def test_retryable_failures_back_off_and_report_each_message_once(
    kube: KubeAPI, kube_sandbox: KubeSandbox, start_controller, wait_for
) -> None:
    backend = FailingProvisioner(ProvisionError("Heketi is unreachable"))
    ctl = start_controller(backend)
    make_claim(kube)
    wait_for(lambda: backend.calls >= 5, what="several retries")
    assert ctl.queue.num_requeues(("claim", f"{NS}/c1")) >= 4
    assert len(events(kube_sandbox, "ProvisioningFailed")) == 1
    failures = ctl.metrics.registry.get_sample_value(
        "controller_persistentvolumeclaim_provision_failed_total",
        {"class": "gold", "source": ""},
    )
    assert failures is not None and failures >= 5


def test_on_1_30_claims_get_one_warning_naming_the_override(tmp_path, wait_for) -> None:
    with KubeSandbox(version="1.30.2", kubeconfig_path=tmp_path / "kc") as sandbox:
        kube = KubeAPI(load_api_client(sandbox.kubeconfig_path))
        backend = FailingProvisioner(ProvisionError("must not be called"))
        ctl = Controller(kube, backend, Settings(resync_period=3600))
        ctl.start(sync_timeout=10)
        try:
            make_claim(kube)
            wait_for(lambda: events(sandbox, "ProvisioningFailed"), what="the gate warning")
            ctl.resync()
            ctl.resync()
            assert ctl.queue.wait_idle(5)
            warnings = events(sandbox, "ProvisioningFailed")
            assert len(warnings) == 1
            assert "--assume-glusterfs-plugin" in warnings[0]["message"]
            assert "1.30.2" in warnings[0]["message"]
            assert backend.calls == 0
            assert sandbox.list_objects("persistentvolumes") == []
        finally:
            ctl.stop(grace=5)

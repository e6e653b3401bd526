"""Fixtures for the controller runtime tests: a real Kubernetes API sandbox on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.k8s.kubeapi import KubeAPI, load_api_client
from provisioner.sandbox.kube import KubeSandbox
from provisioner.sandbox.waiting import wait_for as wait_until

WaitFor = Callable[..., Any]


@pytest.fixture
def wait_for() -> WaitFor:
    return wait_until


@pytest.fixture
def kube_sandbox(tmp_path: Path) -> Iterator[KubeSandbox]:
    sandbox = KubeSandbox(
        version="1.25.16",
        kubeconfig_path=tmp_path / "kubeconfig",
        watch_cache_size=50,
        bookmark_interval=0.2,
    )
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def kube(kube_sandbox: KubeSandbox) -> KubeAPI:
    assert kube_sandbox.kubeconfig_path is not None
    return KubeAPI(load_api_client(kube_sandbox.kubeconfig_path), request_timeout=10.0)

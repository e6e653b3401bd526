"""Fixtures for the controller runtime tests: a real Kubernetes API sandbox on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.kubeapi import KubeAPI, load_api_client
from provisioner.sandbox.kube import KubeSandbox

WaitFor = Callable[..., Any]


def _wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll a condition until it holds or the deadline passes (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s: {what or predicate}")
        time.sleep(0.01)


@pytest.fixture
def wait_for() -> WaitFor:
    return _wait_for


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

"""Fixtures: a running sandbox per test and official-client APIs pointed at it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from provisioner.sandbox.kube import KubeSandbox


@pytest.fixture
def kube() -> Iterator[KubeSandbox]:
    with KubeSandbox(version="1.30.0", bookmark_interval=0.2) as sandbox:
        yield sandbox


KUBECTL = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")


@pytest.fixture
def kubectl(kube: KubeSandbox, tmp_path: Path):
    def run(*args: str, ok: bool = True) -> str:
        """kubectl against the sandbox; ``ok`` asserts exit 0. stdout + stderr."""
        done = subprocess.run(
            [
                KUBECTL,
                "--kubeconfig",
                str(kube.kubeconfig_path),
                "--cache-dir",
                str(tmp_path / "cache"),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if ok:
            assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    return run


@pytest.fixture
def api_client(kube: KubeSandbox) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=kube.kubeconfig_path)
    yield api
    api.close()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def storage(api_client: client.ApiClient) -> client.StorageV1Api:
    return client.StorageV1Api(api_client)


@pytest.fixture
def raw(api_client: client.ApiClient) -> Callable[..., tuple[int, Any]]:
    """Raw JSON through ``ApiClient.call_api``: (status, parsed body), errors included."""

    def call(
        method: str,
        path: str,
        body: Any = None,
        content_type: str | None = None,
        query: list[tuple[str, Any]] | None = None,
        header_params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        headers = {"Accept": "application/json", **(header_params or {})}
        if content_type:
            headers["Content-Type"] = content_type
        elif body is not None:
            headers["Content-Type"] = "application/json"
        args = api_client.param_serialize(
            method, path, query_params=query or [], header_params=headers, body=body
        )
        response = api_client.call_api(*args)
        payload = response.read()
        return response.status, json.loads(payload) if payload else None

    return call


def _claim_body(name: str, size: str = "1Gi", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": size}},
            **spec,
        },
    }


def _volume_body(
    name: str,
    *,
    claim: dict[str, Any] | None = None,
    policy: str = "Delete",
    size: str = "1Gi",
    storage_class: str = "gluster",
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "capacity": {"storage": size},
        "accessModes": ["ReadWriteOnce"],
        "glusterfs": {"endpoints": "glusterfs-dynamic-x", "path": "vol_x"},
        "persistentVolumeReclaimPolicy": policy,
        "storageClassName": storage_class,
    }
    if claim is not None:
        spec["claimRef"] = claim
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": spec,
    }


def _class_body(
    name: str = "gluster",
    provisioner: str = "gluster.org/heketi",
    *,
    default: bool = False,
    mode: str = "Immediate",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if default:
        meta["annotations"] = {"storageclass.kubernetes.io/is-default-class": "true"}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": meta,
        "provisioner": provisioner,
        "parameters": {"resturl": "http://heketi:8080"},
        "volumeBindingMode": mode,
    }


class Bodies:
    """Object builders, as a fixture (test modules cannot import conftest under importlib)."""

    claim = staticmethod(_claim_body)
    volume = staticmethod(_volume_body)
    storage_class = staticmethod(_class_body)


@pytest.fixture
def bodies() -> type[Bodies]:
    return Bodies

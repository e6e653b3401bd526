"""Discovery, version, health endpoints, the kubeconfig and the standalone entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests
import yaml
from kubernetes import client, config, watch

from provisioner.sandbox.kube import KubeSandbox


@pytest.mark.parametrize(("version", "minor"), [("1.25.0", "25"), ("1.30.2", "30")])
def test_version_is_configurable(version: str, minor: str) -> None:
    with KubeSandbox(version=version) as kube:
        api = config.new_client_from_config(config_file=kube.kubeconfig_path)
        info = client.VersionApi(api).get_code()
        api.close()
    assert info.git_version == f"v{version}"
    assert (info.major, info.minor) == ("1", minor)


def test_core_and_group_discovery(kube: KubeSandbox) -> None:
    api = requests.get(f"{kube.url}/api", timeout=5).json()
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    core = requests.get(f"{kube.url}/api/v1", timeout=5).json()
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["persistentvolumeclaims"]["shortNames"] == ["pvc"]
    assert by_name["persistentvolumeclaims"]["namespaced"] is True
    assert by_name["persistentvolumes"]["namespaced"] is False
    assert by_name["persistentvolumeclaims/status"]["verbs"] == ["get", "patch", "update"]
    assert "watch" in by_name["events"]["verbs"]
    groups = requests.get(f"{kube.url}/apis", timeout=5).json()
    names = {g["name"] for g in groups["groups"]}
    assert {"storage.k8s.io", "coordination.k8s.io", "events.k8s.io"} <= names
    storage = requests.get(f"{kube.url}/apis/storage.k8s.io/v1", timeout=5).json()
    assert storage["groupVersion"] == "storage.k8s.io/v1"
    assert storage["resources"][0]["kind"] == "StorageClass"


@pytest.mark.parametrize(
    "path", ["/openapi/v2", "/openapi/v3/apis/batch/v1", "/apis/batch/v1", "/api/v2"]
)
def test_absent_endpoints_are_404(kube: KubeSandbox, path: str) -> None:
    assert requests.get(f"{kube.url}{path}", timeout=5).status_code == 404


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/livez"])
def test_health(kube: KubeSandbox, path: str) -> None:
    response = requests.get(f"{kube.url}{path}", timeout=5)
    assert (response.status_code, response.text) == (200, "ok")


def test_kubeconfig_contents(kube: KubeSandbox) -> None:
    data = yaml.safe_load(Path(kube.kubeconfig_path).read_text())
    assert data["current-context"] == "heketi-sandbox"
    assert data["clusters"][0] == {"name": "heketi-sandbox", "cluster": {"server": kube.url}}
    assert data["users"][0]["name"] == "heketi-sandbox"


def test_kubeconfig_path_and_token(tmp_path: Path) -> None:
    target = tmp_path / "conf" / "kubeconfig"
    with KubeSandbox(kubeconfig_path=target, token="t0k") as kube:
        data = yaml.safe_load(target.read_text())
        assert data["users"][0]["user"] == {"token": "t0k"}
        assert kube.kubeconfig_path == str(target)
        api = config.new_client_from_config(config_file=str(target))
        assert client.CoreV1Api(api).read_namespace("default").metadata.name == "default"
        api.close()
    assert target.exists()  # a file the caller named is left in place


def test_keep_alive_connection_is_reused(kube: KubeSandbox) -> None:
    session = requests.Session()
    first = session.get(f"{kube.url}/api/v1/namespaces", timeout=5)
    assert first.headers["Content-Length"] == str(len(first.content))
    for _ in range(3):
        session.get(f"{kube.url}/api/v1/namespaces/default", timeout=5)
    assert len(session.get_adapter(kube.url).poolmanager.pools) == 1


def test_standalone_module_serves_until_terminated(tmp_path: Path) -> None:
    out = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [sys.executable, "-m", "provisioner.sandbox.kube", "--port", "0", "--kubeconfig-out",
         str(out), "--version", "1.30.0"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/version", timeout=5).json()["gitVersion"] == "v1.30.0"
        assert yaml.safe_load(out.read_text())["clusters"][0]["cluster"]["server"] == url
    finally:
        proc.terminate()
        assert proc.wait(10) == 0


def test_serviceaccounts_are_served(kube: KubeSandbox, core: client.CoreV1Api) -> None:
    """Discovered (short name ``sa``), namespaced CRUD, list and watch."""
    core_list = requests.get(f"{kube.url}/api/v1", timeout=5).json()
    (entry,) = [r for r in core_list["resources"] if r["name"] == "serviceaccounts"]
    assert (entry["kind"], entry["namespaced"], entry["shortNames"]) == (
        "ServiceAccount",
        True,
        ["sa"],
    )
    made = core.create_namespaced_service_account(
        "default", {"metadata": {"name": "robot"}, "automountServiceAccountToken": False}
    )
    assert made.automount_service_account_token is False
    listed = core.list_namespaced_service_account("default")
    assert [sa.metadata.name for sa in listed.items] == ["robot"]
    core.delete_namespaced_service_account("robot", "default")
    stream = watch.Watch().stream(
        core.list_namespaced_service_account,
        "default",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=1,
    )
    assert [(e["type"], e["object"].metadata.name) for e in stream] == [("DELETED", "robot")]

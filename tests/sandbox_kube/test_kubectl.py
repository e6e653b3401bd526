"""Smoke tests with the real kubectl binary: discovery, get, describe, create, delete."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from provisioner.sandbox.kube import KubeSandbox

from .conftest import KUBECTL

pytestmark = pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl binary not found")

CLASS = """\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: gluster
provisioner: gluster.org/heketi
parameters:
  resturl: http://heketi:8080
"""
CLAIM = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: claim1
spec:
  storageClassName: gluster
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
"""


def test_create_apply_get_describe_delete(
    kubectl, kube: KubeSandbox, tmp_path: Path, bodies, core
) -> None:
    (tmp_path / "class.yaml").write_text(CLASS)
    (tmp_path / "claim.yaml").write_text(CLAIM)
    assert "storageclass.storage.k8s.io/gluster created" in kubectl(
        "create", "-f", str(tmp_path / "class.yaml")
    )
    assert "persistentvolumeclaim/claim1 created" in kubectl(
        "apply", "-f", str(tmp_path / "claim.yaml")
    )
    assert "unchanged" in kubectl("apply", "-f", str(tmp_path / "claim.yaml"))
    assert "claim1" in kubectl("get", "pvc")
    assert "gluster" in kubectl("get", "sc")
    out = kubectl("get", "pvc", "claim1", "-o", "yaml")
    assert "kubernetes.io/pvc-protection" in out
    assert "volume.kubernetes.io/storage-provisioner: gluster.org/heketi" in out
    described = kubectl("describe", "pvc", "claim1")
    assert "ExternalProvisioning" in described
    assert "StorageClass:  gluster" in described
    assert 'persistentvolumeclaim "claim1" deleted' in kubectl("delete", "pvc", "claim1")
    assert kube.get_object("persistentvolumeclaims", "default", "claim1") is None


def test_get_pv_and_errors(kubectl, kube: KubeSandbox, bodies) -> None:
    kube.create_object("persistentvolumes", bodies.volume("pv-one"))
    assert kube.wait_idle()
    header, row = kubectl("get", "pv").splitlines()[:2]
    assert header.split()[:5] == ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM"]
    assert row.split()[:5] == ["pv-one", "1Gi", "RWO", "Delete", "Available"]
    assert "No resources found" in kubectl("get", "secrets", "-n", "kube-system")
    assert 'persistentvolumes "missing" not found' in kubectl("get", "pv", "missing", ok=False)


def test_discovery_listing(kubectl) -> None:
    out = kubectl("api-resources")
    for line in ("persistentvolumeclaims", "storageclasses", "leases", "events.k8s.io/v1"):
        assert line in out
    assert "Server Version: v1.30.0" in kubectl("version")


def test_watch_with_kubectl(kube: KubeSandbox, core, tmp_path: Path) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "w"}})
    proc = subprocess.Popen(
        [
            KUBECTL,
            "--kubeconfig",
            str(kube.kubeconfig_path),
            "--cache-dir",
            str(tmp_path / "c"),
            "get",
            "configmaps",
            "-w",
            "--request-timeout=20s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = [proc.stdout.readline()]
        while "w " not in seen[-1] and seen[-1]:
            seen.append(proc.stdout.readline())
        core.create_namespaced_config_map("default", {"metadata": {"name": "later"}})
        line = proc.stdout.readline()
        while line and "later" not in line:
            line = proc.stdout.readline()
        assert "later" in line
    finally:
        proc.terminate()
        proc.wait(10)

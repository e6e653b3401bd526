"""The Helm chart (charts/heketi-provisioner) installed with ``helm install`` on the real
API servers (1.25.16 and the current release), and a claim of its StorageClass bound.

No kubelet runs the chart's pod, so OUR controller runs as its own process in its
place: authenticated as the chart's ServiceAccount (a TokenRequest token), with the
args the chart rendered into the Deployment (read back from the API server), and
``$POD_NAMESPACE`` the release namespace, as the Deployment sets it. Only
``--kubeconfig`` and ``--metrics-address`` (a free loopback port) are added. The
real authorizer judges every call under the chart's RBAC: no 403 may appear.

helm comes from tools/build-go-tools, as in tests/deploy/test_chart.py: without it
the test skips, or fails when HEKETI_PROVISIONER_GO_TOOLS=require.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbeds.harness.controller import ControllerProcess
from testbeds.peers import REPO, RealHeketi, RealKube, free_port, wait_for
from tests.go_tools import go_tool

pytestmark = pytest.mark.timeout(180)

CHART = REPO / "charts" / "heketi-provisioner"
RELEASE = "hp-chart"
NAMESPACE = "hp-chart"  # the release namespace (made by --create-namespace)
CLAIMS = "hp-chart-claims"  # a tenant's namespace
CLASS = "hp-chart-glusterfs"
CONTAINER = "heketi-provisioner"
WAIT = 60.0
# kind -> (API path prefix, namespaced)
PATHS = {
    "ServiceAccount": ("/api/v1", "serviceaccounts", True),
    "Secret": ("/api/v1", "secrets", True),
    "Service": ("/api/v1", "services", True),
    "Deployment": ("/apis/apps/v1", "deployments", True),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    "StorageClass": ("/apis/storage.k8s.io/v1", "storageclasses", False),
}
REQUIRED_KINDS = {
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
    "Deployment",
    "Secret",
    "StorageClass",
}


@pytest.fixture
def helm() -> str:
    return go_tool("helm")


def run_helm(
    helm: str, kube: RealKube, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """helm against ``kube`` as the admin; helm's own files in a scratch place."""
    scratch = kube.workdir / "helm"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "HELM_"))}
    env.update(
        HELM_CACHE_HOME=str(scratch / "cache"),
        HELM_CONFIG_HOME=str(scratch / "config"),
        HELM_DATA_HOME=str(scratch / "data"),
    )
    out = subprocess.run(
        [helm, *args, f"--kubeconfig={kube.admin_kubeconfig}", f"--namespace={NAMESPACE}"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    if check and out.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)}: exit {out.returncode}\n{out.stderr}")
    return out


def object_path(doc: dict[str, Any]) -> str:
    prefix, plural, namespaced = PATHS[doc["kind"]]
    meta = doc["metadata"]
    ns = f"/namespaces/{meta.get('namespace') or NAMESPACE}" if namespaced else ""
    return f"{prefix}{ns}/{plural}/{meta['name']}"


def get_or_none(kube: RealKube, path: str) -> Any:
    r = kube.request("GET", path, ok=(200, 404))
    return None if r.get("kind") == "Status" else r


def delete(kube: RealKube, path: str) -> None:
    kube.request("DELETE", path, ok=(200, 202, 404))


def chart_values(kube: RealKube, heketi: RealHeketi) -> dict[str, Any]:
    """The chart's default class, renamed; the real Heketi and its admin key."""
    default_class = yaml.safe_load((CHART / "values.yaml").read_text())["storageClasses"][0]
    values: dict[str, Any] = {
        "heketi": {"url": heketi.url, "user": "admin", "key": heketi.admin_key},
        "storageClasses": [{**default_class, "name": CLASS}],
    }
    if kube.version != "1.25":
        # 1.26+ kubelets cannot mount glusterfs: the documented switch (values.yaml)
        values["config"] = {"assumeGlusterfsPlugin": True}
    return values


def start_as_chart_pod(
    kube: RealKube, args: list[str], service_account: str, workdir: Path
) -> ControllerProcess:
    """``python -m provisioner run <the Deployment's args>`` as the chart's
    ServiceAccount, with the Deployment's environment (POD_NAMESPACE, POD_NAME)."""
    kubeconfig = kube.mint_serviceaccount_kubeconfig(
        NAMESPACE, service_account, path=workdir / "chart-sa.kubeconfig"
    )
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "provisioner",
        "run",
        *args,
        f"--kubeconfig={kubeconfig}",
        f"--metrics-address=127.0.0.1:{port}",
    ]
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HEKETI_PROVISIONER_", "KUBECONFIG", "POD_"))
    }
    env = {**base, "PYTHONUNBUFFERED": "1", "POD_NAMESPACE": NAMESPACE, "POD_NAME": "chart-pod-0"}
    log_path = workdir / "controller.log"
    log = open(log_path, "ab")  # noqa: SIM115 - closed by ControllerProcess.stop()/kill()
    proc = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=workdir,
        env=env,
        start_new_session=True,
    )
    return ControllerProcess(kube, argv, log_path, f"http://127.0.0.1:{port}", proc, log)


def test_chart_installs_and_a_claim_of_its_class_binds(
    helm: str, real_kube: RealKube, kube_heketi: RealHeketi, tmp_path: Path
) -> None:
    kube, heketi = real_kube, kube_heketi
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(chart_values(kube, heketi)))
    values_file.chmod(0o600)
    claim = f"/api/v1/namespaces/{CLAIMS}/persistentvolumeclaims/data"
    cp: ControllerProcess | None = None
    installed = False
    try:
        run_helm(
            helm,
            kube,
            "install",
            RELEASE,
            str(CHART),
            "--create-namespace",
            f"--values={values_file}",
            "--wait=false",
        )
        installed = True

        # -- every object of the release is on the API server, labelled by Helm
        manifest = run_helm(helm, kube, "get", "manifest", RELEASE).stdout
        docs = [d for d in yaml.safe_load_all(manifest) if d]
        kinds = {d["kind"] for d in docs}
        assert kinds >= REQUIRED_KINDS, f"the release lacks {sorted(REQUIRED_KINDS - kinds)}"
        live: dict[str, dict[str, Any]] = {}
        for doc in docs:
            obj = get_or_none(kube, object_path(doc))
            assert obj is not None, f"{doc['kind']} {doc['metadata']['name']} not on the server"
            labels = obj["metadata"].get("labels") or {}
            assert labels.get("app.kubernetes.io/instance") == RELEASE, obj["metadata"]
            assert labels.get("app.kubernetes.io/managed-by") == "Helm", obj["metadata"]
            live.setdefault(doc["kind"], obj)
        (storage_class,) = [d for d in docs if d["kind"] == "StorageClass"]
        assert storage_class["metadata"]["name"] == CLASS
        secret = live["Secret"]
        assert secret["type"] == "kubernetes.io/glusterfs"
        sc = live["StorageClass"]
        assert sc["parameters"]["resturl"] == heketi.url
        assert sc["parameters"]["secretNamespace"] == NAMESPACE
        assert sc["parameters"]["secretName"] == secret["metadata"]["name"]

        # -- the Deployment's container, as the API server stored it
        deployment = live["Deployment"]
        pod = deployment["spec"]["template"]["spec"]
        (container,) = [c for c in pod["containers"] if c["name"] == CONTAINER]
        args: list[str] = container["args"]
        assert f"--provisioner-name={sc['provisioner']}" in args, args
        assert ("--assume-glusterfs-plugin" in args) == (kube.version != "1.25"), args
        service_account = pod["serviceAccountName"]
        assert service_account == live["ServiceAccount"]["metadata"]["name"]

        # -- our controller in the pod's place, as the chart's ServiceAccount
        cp = start_as_chart_pod(kube, args, service_account, tmp_path)
        cp.wait_ready(WAIT)
        cp.wait_leader(WAIT)  # the chart leaves leader election on: the Lease is its Role's
        lease = kube.get(f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases")
        assert lease["items"], "no Lease in the release namespace"

        kube.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CLAIMS}},
            ok=(201, 409),
        )
        kube.create(
            f"/api/v1/namespaces/{CLAIMS}/persistentvolumeclaims",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "storageClassName": CLASS,
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )

        def bound() -> dict[str, Any] | None:
            pvc: dict[str, Any] = kube.get(claim)
            if pvc["status"].get("phase") == "Bound" and pvc["spec"].get("volumeName"):
                return pvc
            return None

        pvc = wait_for(bound, WAIT, "claim of the chart's class Bound", check=cp.check_running)
        pv_path = f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}"
        pv = kube.get(pv_path)
        ann = pv["metadata"]["annotations"]
        assert ann["pv.kubernetes.io/provisioned-by"] == sc["provisioner"]
        assert pv["spec"]["storageClassName"] == CLASS
        assert pv["spec"]["glusterfs"]["path"], pv["spec"]
        volume_id = ann["gluster.kubernetes.io/heketi-volume-id"]
        assert heketi.request("GET", f"/volumes/{volume_id}").status_code == 200

        # -- the claim goes, and its volume with it (reclaimPolicy Delete)
        delete(kube, claim)
        wait_for(
            lambda: get_or_none(kube, pv_path) is None,
            WAIT,
            "the PV deleted",
            check=cp.check_running,
        )
        assert heketi.request("GET", f"/volumes/{volume_id}").status_code == 404

        # -- stop cleanly; the chart's RBAC sufficed on the real authorizer
        assert cp.stop() == 0, cp.tail()
        assert cp.forbidden_lines() == [], "\n".join(cp.forbidden_lines()[:20])

        # -- uninstall: everything goes but the Secret (helm.sh/resource-policy: keep)
        run_helm(helm, kube, "uninstall", RELEASE, "--wait=false")
        installed = False
        for doc in docs:
            if doc["kind"] == "Secret":
                assert get_or_none(kube, object_path(doc)) is not None, "the key Secret went"
            else:
                assert get_or_none(kube, object_path(doc)) is None, f"{doc['kind']} left"
    finally:
        if cp is not None and cp.running():
            # let the controller delete the volume of a claim left by a failure
            pv_name = (get_or_none(kube, claim) or {}).get("spec", {}).get("volumeName")
            delete(kube, claim)
            if pv_name:
                with contextlib.suppress(TimeoutError):
                    wait_for(
                        lambda: get_or_none(kube, f"/api/v1/persistentvolumes/{pv_name}") is None,
                        30,
                        "the PV deleted",
                    )
            cp.stop()
        if installed:
            run_helm(helm, kube, "uninstall", RELEASE, "--wait=false", check=False)
        delete(kube, claim)
        delete(kube, f"/api/v1/namespaces/{CLAIMS}")
        delete(kube, f"/api/v1/namespaces/{NAMESPACE}")

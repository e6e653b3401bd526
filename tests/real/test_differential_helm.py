"""Helm's whole lifecycle gives the same output against the API sandbox and the real
kube-apiserver 1.25.16 and 1.37.2 (with kube-controller-manager): install, status,
upgrade, history, rollback, a failed upgrade (a StorageClass parameter is immutable),
list, uninstall with ``--wait`` (the release Secret's delete sends protobuf
DeleteOptions, the objects' deletes JSON ones), and ``install --wait`` on a Deployment
that no controller makes ready (no kubelet runs its pod anywhere here): it times out on
both, unless the Deployment wants no replicas, which only kube-controller-manager's
deployment controller can tell (the README's allowlist says so).

Output is compared command by command after normalising dates and the chart path. A
difference must be listed in the allowlist of provisioner/sandbox/kube/README.md with
step ``helm:<name>`` and field ``output``; a row that no longer differs fails.

helm comes from tools/build-go-tools (tests/go_tools.py): without it the test skips,
or fails when HEKETI_PROVISIONER_GO_TOOLS=require.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from provisioner.sandbox.kube import KubeSandbox
from testbeds.peers import REPO, RealKube
from tests.go_tools import go_tool

from .differential import check_against_allowlist
from .kube_target import VERSIONS, read_allowlist

pytestmark = pytest.mark.timeout(300)

CHART = REPO / "charts" / "heketi-provisioner"
NS = "hdiff"
CLASS = "hdiff-glusterfs"  # not the chart's default name: other tests share the cluster
WAIT = "6s"  # helm polls every 2 s; the Deployment never gets ready either way
# Long enough for kube-controller-manager to make the ReplicaSet on a loaded machine:
# the real server answers as soon as it has; the sandbox waits it out.
WAIT_NO_REPLICAS = "30s"
VALUES = (
    "--set", "heketi.url=http://heketi.example.com:8080", "--set-string", "heketi.key=k",
    "--set", f"storageClasses[0].name={CLASS}", "--set", "config.assumeGlusterfsPlugin=true",
)  # fmt: skip
STEPS: list[tuple[str, tuple[str, ...]]] = [
    ("install", ("install", "hd", "{chart}", "--create-namespace", *VALUES)),
    ("status", ("status", "hd")),
    ("upgrade", ("upgrade", "hd", "{chart}", "--reuse-values", "--set", "config.workers=8")),
    ("history", ("history", "hd")),
    ("rollback", ("rollback", "hd", "1")),
    (
        "upgrade-immutable",
        ("upgrade", "hd", "{chart}", "--reuse-values", "--set", "heketi.url=http://other:8080"),
    ),
    ("history-after-failure", ("history", "hd")),
    ("list", ("list", "-a")),
    ("manifest", ("get", "manifest", "hd")),
    ("uninstall", ("uninstall", "hd", "--wait")),
    ("list-after-uninstall", ("list", "-a")),
    ("status-after-uninstall", ("status", "hd")),
    ("install-wait", ("install", "hw", "{chart}", "--wait", "--timeout", WAIT)),
    ("status-after-timeout", ("status", "hw")),
    ("upgrade-wait", ("upgrade", "hw", "{chart}", "--wait", "--timeout", WAIT)),
    ("uninstall-timed-out", ("uninstall", "hw")),
    (
        "install-wait-no-replicas",
        (
            "install",
            "h0",
            "{chart}",
            "--set",
            "replicaCount=0",
            "--wait",
            "--timeout",
            WAIT_NO_REPLICAS,
        ),
    ),
    ("uninstall-no-replicas", ("uninstall", "h0", "--wait")),
    ("list-at-the-end", ("list", "-a")),
]
DATES = (
    re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}"),  # status, history
    re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ [+-]\d{4} \w+"),  # list
)


def _normal(text: str) -> str:
    text = text.replace(str(CHART), "<chart>")
    for pattern in DATES:
        text = pattern.sub("<date>", text)
    # a table's padding follows the dates' widths (Go trims a fraction's zeros)
    return re.sub(r" +\t", "\t", text).strip()


def run_helm_script(kubeconfig: Path, workdir: Path) -> dict[str, tuple[int, str]]:
    """Each step's (exit status, output); helm's own files under ``workdir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "HELM_"))}
    env.update(
        HELM_CACHE_HOME=str(workdir / "cache"),
        HELM_CONFIG_HOME=str(workdir / "config"),
        HELM_DATA_HOME=str(workdir / "data"),
    )
    helm = go_tool("helm")
    out = {}
    for name, args in STEPS:
        argv = [str(CHART) if a == "{chart}" else a for a in args]
        done = subprocess.run(
            [helm, *argv, f"--kubeconfig={kubeconfig}", f"--namespace={NS}"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        out[f"helm:{name}"] = (done.returncode, _normal(done.stdout + done.stderr))
    return out


@pytest.mark.parametrize("real_kube", list(VERSIONS), indirect=True)
def test_helm_lifecycle_answers_alike(real_kube: RealKube, tmp_path: Path) -> None:
    version = VERSIONS[real_kube.version]
    real = run_helm_script(real_kube.admin_kubeconfig, tmp_path / "real")
    with KubeSandbox(version=version) as kube:
        assert kube.kubeconfig_path is not None
        sandbox = run_helm_script(Path(kube.kubeconfig_path), tmp_path / "sandbox")
        # no release record is left: the protobuf deletes of the release Secrets held
        secrets = kube.list_objects("secrets", NS)
        records = [s["metadata"]["name"] for s in secrets if s["type"] == "helm.sh/release.v1"]
        assert records == [], records
    assert real["helm:install"][0] == 0, real["helm:install"]
    rc, said = real["helm:uninstall"]
    assert rc == 0 and said.endswith('release "hd" uninstalled'), said
    found = [(s, "output", sandbox[s], real[s]) for s in real if sandbox[s] != real[s]]
    check_against_allowlist(found, read_allowlist(version.rsplit(".", 1)[0], "helm:"))

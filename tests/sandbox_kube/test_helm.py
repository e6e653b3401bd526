"""The Helm chart's whole lifecycle on the sandbox, as a user trying the chart goes
through it: install, upgrade, rollback, status, history, uninstall. ``helm uninstall``
deletes its release Secrets with protobuf DeleteOptions, which the sandbox once refused
("the request body is not valid JSON") and so left the release half removed.

helm comes from tools/build-go-tools; without it this skips (fails with
HEKETI_PROVISIONER_GO_TOOLS=require). tests/real/test_differential_helm.py compares
the same commands with kube-apiserver 1.25 and 1.37."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from provisioner.sandbox.kube import KubeSandbox
from tests.go_tools import go_tool

CHART = Path(__file__).resolve().parents[2] / "charts" / "heketi-provisioner"


def test_install_upgrade_rollback_uninstall(kube: KubeSandbox, tmp_path: Path) -> None:
    helm = go_tool("helm")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "HELM_"))}
    env.update({f"HELM_{d}_HOME": str(tmp_path / d.lower()) for d in ("CACHE", "CONFIG", "DATA")})

    def run(*args: str) -> str:
        done = subprocess.run(
            [helm, *args, f"--kubeconfig={kube.kubeconfig_path}", "--namespace=hp"],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert done.returncode == 0, f"helm {' '.join(args)}: {done.stderr}"
        return done.stdout

    values = ("--set", "heketi.url=http://heketi:8080", "--set-string", "heketi.key=k")
    run("install", "hp", str(CHART), "--create-namespace", *values)
    assert kube.get_object("storageclasses", None, "glusterfs") is not None
    run("upgrade", "hp", str(CHART), "--reuse-values", "--set", "config.workers=4")
    run("rollback", "hp", "1")
    assert "STATUS: deployed" in run("status", "hp")
    assert [line.split()[0] for line in run("history", "hp").splitlines()[1:]] == ["1", "2", "3"]
    out = run("uninstall", "hp", "--wait")
    assert 'release "hp" uninstalled' in out
    secrets = kube.list_objects("secrets", "hp")
    assert [s["type"] for s in secrets] == ["kubernetes.io/glusterfs"]  # kept by its policy
    assert kube.get_object("storageclasses", None, "glusterfs") is None
    assert kube.list_objects("deployments", "hp") == []
    assert "hp" not in run("list", "-a")

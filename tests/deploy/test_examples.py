"""The example Secret, StorageClass and claim: consistent with each other, with the
controller's flags, and listing every in-tree StorageClass parameter."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import major_minor

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
CLASS_FILE = MANIFESTS / "example-storageclass.yaml"

# Every parameter of the in-tree kubernetes.io/glusterfs provisioner
# (shared/COMPATIBILITY.md), as the example spells it.
ACTIVE = {"resturl", "restuser", "secretNamespace", "secretName", "volumetype", "gidMin", "gidMax"}
OPTIONAL = {
    "clusterid",
    "volumeoptions",
    "volumenameprefix",
    "snapfactor",
    "customepnameprefix",
    "restauthenabled",
    "restuserkey",
}
ALL_PARAMETERS = ACTIVE | OPTIONAL
_COMMENTED = re.compile(r"^(?P<indent>\s+)# (?P<key>[A-Za-z]+): (?P<value>\".*\")$")


def _uncommented_class_text() -> str:
    """The example with every optional parameter switched on."""
    lines = []
    for line in CLASS_FILE.read_text().splitlines():
        match = _COMMENTED.match(line)
        if match and match["key"] in ALL_PARAMETERS:
            line = f"{match['indent']}{match['key']}: {match['value']}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@pytest.fixture
def storage_class(manifest: Callable[[str, str], dict[str, Any]]) -> dict[str, Any]:
    return manifest("example-storageclass.yaml", "StorageClass")


@pytest.fixture
def secret(manifest: Callable[[str, str], dict[str, Any]]) -> dict[str, Any]:
    return manifest("example-secret.yaml", "Secret")


def test_active_parameters(storage_class: dict[str, Any]) -> None:
    params = storage_class["parameters"]
    assert set(params) == ACTIVE
    assert all(isinstance(v, str) for v in params.values())


def test_optional_parameters_are_commented_with_a_default() -> None:
    text = CLASS_FILE.read_text().splitlines()
    commented = {}
    for number, line in enumerate(text):
        match = _COMMENTED.match(line)
        if match and match["key"] in ALL_PARAMETERS:
            commented[match["key"]] = number
    assert set(commented) == OPTIONAL
    for key, number in commented.items():
        # The comment block just above each optional parameter gives its default.
        above = "\n".join(text[max(0, number - 4) : number])
        assert "Default:" in above, key


def test_every_parameter_is_present_once_uncommented() -> None:
    doc = yaml.safe_load(_uncommented_class_text())
    assert set(doc["parameters"]) == ALL_PARAMETERS
    version = major_minor(kubernetes_validate.latest_version())
    kubernetes_validate.validate(doc, version, strict=True)


def test_class_names_the_deployment_provisioner(
    storage_class: dict[str, Any], manifest: Callable[[str, str], dict[str, Any]]
) -> None:
    deployment = manifest("deployment.yaml", "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert f"--provisioner-name={storage_class['provisioner']}" in container["args"]
    assert storage_class["provisioner"] == "gluster.org/heketi"
    assert storage_class["reclaimPolicy"] == "Delete"


def test_class_points_at_the_example_secret(
    storage_class: dict[str, Any], secret: dict[str, Any]
) -> None:
    params = storage_class["parameters"]
    assert params["secretNamespace"] == secret["metadata"]["namespace"]
    assert params["secretName"] == secret["metadata"]["name"]
    # `user` cannot poll Heketi's async operations (docs/security.md).
    assert params["restuser"] == "admin"


def test_secret_shape(secret: dict[str, Any]) -> None:
    assert secret["type"] == "kubernetes.io/glusterfs"
    values = {**secret.get("data", {}), **secret.get("stringData", {})}
    assert set(values) == {"key"}
    assert "REPLACE" in values["key"]  # a placeholder, never a real key


def test_claim_uses_the_example_class(
    storage_class: dict[str, Any], manifest: Callable[[str, str], dict[str, Any]]
) -> None:
    claim = manifest("example-claim.yaml", "PersistentVolumeClaim")
    assert claim["spec"]["storageClassName"] == storage_class["metadata"]["name"]
    assert set(claim["spec"]["accessModes"]) <= {"ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany"}
    assert "selector" not in claim["spec"]
    assert claim["spec"].get("volumeMode", "Filesystem") == "Filesystem"


@pytest.mark.parametrize("everything", [False, True], ids=["active", "all-uncommented"])
def test_parameters_are_accepted_by_the_parser(everything: bool) -> None:
    classes = pytest.importorskip("provisioner.gluster.parameters")
    text = _uncommented_class_text() if everything else CLASS_FILE.read_text()
    params = yaml.safe_load(text)["parameters"]
    parsed = classes.parse_class_parameters(params)
    assert parsed.rest_url == params["resturl"]
    assert (parsed.gid_min, parsed.gid_max) == (40000, 50000)

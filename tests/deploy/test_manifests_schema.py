"""Every manifest parses and is valid (strict schema) for the oldest and newest
Kubernetes versions we deploy to: 1.25 (the last with in-tree glusterfs) and the
newest version the installed kubernetes-validate knows."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import major_minor

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
MANIFEST_FILES = sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")
OLDEST = "1.25"
NEWEST = major_minor(kubernetes_validate.latest_version())
VERSIONS = sorted({OLDEST, NEWEST})


def test_the_expected_manifests_exist() -> None:
    expected = {
        "namespace.yaml",
        "serviceaccount.yaml",
        "rbac.yaml",
        "deployment.yaml",
        "metrics-service.yaml",
        "example-secret.yaml",
        "example-storageclass.yaml",
        "example-claim.yaml",
    }
    assert expected == set(MANIFEST_FILES)


def test_newest_version_is_discovered_and_newer_than_oldest() -> None:
    assert tuple(map(int, NEWEST.split("."))) > (1, 25)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("file", MANIFEST_FILES)
def test_manifest_is_valid(file: str, version: str) -> None:
    docs = [d for d in yaml.safe_load_all((MANIFESTS / file).read_text()) if d is not None]
    assert docs, f"{file} holds no object"
    for doc in docs:
        try:
            used = kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = "/".join(str(p) for p in err.path)
            pytest.fail(f"{file}: {doc['kind']} invalid for {version} at {path}: {err.message}")
        # The schema of exactly that version was used, not an older fallback.
        assert used == version


def test_strict_validation_rejects_an_unknown_field() -> None:
    """Guards the test above: strict mode must catch a misspelt field."""
    doc = yaml.safe_load((MANIFESTS / "serviceaccount.yaml").read_text())
    doc["metadata"]["nmae"] = "typo"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, NEWEST, strict=True)


def test_every_manifest_has_the_part_of_label() -> None:
    for file in MANIFEST_FILES:
        for doc in yaml.safe_load_all((MANIFESTS / file).read_text()):
            if doc is None:
                continue
            labels = doc["metadata"].get("labels", {})
            if doc["kind"] == "PersistentVolumeClaim":
                continue  # a user's claim, not part of the install
            assert labels.get("app.kubernetes.io/part-of") == "heketi-provisioner", (
                f"{file}: {doc['kind']} {doc['metadata']['name']}"
            )

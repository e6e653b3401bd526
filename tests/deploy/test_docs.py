"""The operator documentation: links resolve and the promised topics are covered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
OPERATOR_DOCS = [
    "install.md",
    "kubernetes-1.26-and-later.md",
    "migration.md",
    "operations.md",
    "parameters.md",
    "security.md",
    "troubleshooting.md",
]
EVENT_REASONS = [
    "ExternalProvisioning",
    "Provisioning",
    "ProvisioningSucceeded",
    "ProvisioningFailed",
    "ProvisioningCleanupFailed",
    "VolumeFailedDelete",
]
PARAMETERS = [
    "resturl",
    "restauthenabled",
    "restuser",
    "restuserkey",
    "secretNamespace",
    "secretName",
    "clusterid",
    "gidMin",
    "gidMax",
    "volumetype",
    "volumeoptions",
    "volumenameprefix",
    "snapfactor",
    "customepnameprefix",
]
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _headings(path: Path) -> list[str]:
    in_code = False
    found = []
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.append(line.lstrip("#").strip())
    return found


def _text(name: str) -> str:
    return (DOCS / name).read_text()


@pytest.mark.parametrize("name", OPERATOR_DOCS)
def test_relative_links_resolve(name: str) -> None:
    for target in _LINK.findall(_text(name)):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        file, _, anchor = target.partition("#")
        path = (DOCS / file).resolve() if file else DOCS / name
        assert path.exists(), f"{name}: broken link {target}"
        if anchor:
            slugs = {_slug(h) for h in _headings(path)}
            assert anchor in slugs, f"{name}: no heading for #{anchor} in {path.name}"


def test_troubleshooting_has_a_section_per_event_reason() -> None:
    headings = _headings(DOCS / "troubleshooting.md")
    for reason in EVENT_REASONS:
        assert reason in headings, reason


def test_parameters_table_lists_every_parameter() -> None:
    rows = [ln for ln in _text("parameters.md").splitlines() if ln.startswith("| `")]
    keys = {key for row in rows for key in re.findall(r"`([A-Za-z]+)`", row.split("|")[1])}
    assert set(PARAMETERS) <= keys


def test_migration_lists_the_fixes_and_the_flags() -> None:
    text = _text("migration.md")
    assert "--provisioner-name" in text and "kubernetes.io/glusterfs" in text
    assert "--assume-glusterfs-plugin" in text
    for fix in ("`key`", "2147483646", "claim UID", "GID", "Endpoints", "StorageClass"):
        assert fix in text, fix


def test_security_says_admin_is_required_and_why() -> None:
    section = _text("security.md").split("## Which Heketi user", 1)[1].split("\n## ", 1)[0]
    assert "`admin` is required" in section
    assert "poll" in section  # the reason: `user` cannot poll async operations


def test_install_uses_the_kustomization() -> None:
    assert "kubectl apply -k manifests/" in _text("install.md")


@pytest.mark.parametrize("name", ["install.md", "security.md", "troubleshooting.md"])
def test_flags_and_metrics_point_at_the_operations_guide(name: str) -> None:
    text = _text(name)
    assert "](operations.md#" in text
    assert "run --help" not in text  # the placeholder the guide replaced

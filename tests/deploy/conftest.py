"""Shared fixtures for the deployment tests (manifests, Dockerfile, docs).

These tests read files only; the one that runs ``kubectl kustomize`` needs no cluster.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"


def _load_docs(path: Path) -> list[dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    for doc in docs:
        assert isinstance(doc, dict), f"{path.name}: a document is not a mapping"
    return docs


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture
def manifests_dir() -> Path:
    return MANIFESTS


@pytest.fixture
def load_docs() -> Callable[[Path], list[dict[str, Any]]]:
    """Parse every YAML document of a file (empty documents dropped)."""
    return _load_docs


@pytest.fixture
def manifest() -> Callable[[str, str], dict[str, Any]]:
    """The only object of ``kind`` in ``manifests/<file>``."""

    def find(file: str, kind: str) -> dict[str, Any]:
        found = [doc for doc in _load_docs(MANIFESTS / file) if doc.get("kind") == kind]
        assert len(found) == 1, f"{file}: expected one {kind}, found {len(found)}"
        return found[0]

    return find

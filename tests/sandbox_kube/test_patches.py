"""PATCH with the three content types clients use."""

from __future__ import annotations

import pytest
from kubernetes import client

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATH = "/api/v1/namespaces/default/configmaps/p"


@pytest.fixture
def made(raw) -> dict:
    body = {
        "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "finalizers": ["x/one", "x/two"]},
        "data": {"k": "v", "drop": "me"},
    }
    return raw("POST", "/api/v1/namespaces/default/configmaps", body)[1]


def test_merge_patch(raw, made) -> None:
    status, out = raw(
        "PATCH",
        PATH,
        {"metadata": {"labels": {"a": None, "c": "3"}}, "data": {"drop": None}},
        MERGE,
    )
    assert status == 200
    assert out["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert out["data"] == {"k": "v"}
    assert int(out["metadata"]["resourceVersion"]) > int(made["metadata"]["resourceVersion"])


def test_strategic_patch_replaces_lists_and_deletes_from_primitive_lists(raw, made) -> None:
    status, out = raw("PATCH", PATH, {"metadata": {"finalizers": ["x/three"]}}, STRATEGIC)
    assert status == 200
    assert out["metadata"]["finalizers"] == ["x/three"]
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x/three"]}}
    _, out = raw("PATCH", PATH, patch, STRATEGIC)
    assert not out["metadata"].get("finalizers")


def test_json_patch(raw, made) -> None:
    ops = [
        {"op": "test", "path": "/data/k", "value": "v"},
        {"op": "remove", "path": "/metadata/finalizers/0"},
        {"op": "add", "path": "/metadata/labels/new", "value": "yes"},
        {"op": "replace", "path": "/data/k", "value": "w"},
    ]
    status, out = raw("PATCH", PATH, ops, JSON_PATCH)
    assert status == 200
    assert out["metadata"]["finalizers"] == ["x/two"]
    assert out["metadata"]["labels"]["new"] == "yes"
    assert out["data"]["k"] == "w"


def test_json_patch_failed_test_is_422(raw, made) -> None:
    status, out = raw(
        "PATCH", PATH, [{"op": "test", "path": "/data/k", "value": "other"}], JSON_PATCH
    )
    assert status == 422
    assert out["kind"] == "Status"


def test_patch_with_stale_resource_version_conflicts(raw, made) -> None:
    patch = {"metadata": {"resourceVersion": "1"}, "data": {"k": "z"}}
    status, out = raw("PATCH", PATH, patch, MERGE)
    assert status == 409
    assert out["reason"] == "Conflict"


def test_unsupported_patch_type(raw, made) -> None:
    for content_type in ("application/yaml", "application/apply-patch+yaml"):
        status, body = raw("PATCH", PATH, {"data": {}}, content_type)
        assert status == 415
        assert body["reason"] == "UnsupportedMediaType"


def test_official_client_patch_status(core: client.CoreV1Api, bodies) -> None:
    core.create_namespaced_persistent_volume_claim("default", bodies.claim("c"))
    out = core.patch_namespaced_persistent_volume_claim_status(
        "c", "default", {"status": {"phase": "Lost"}, "spec": {"volumeName": "ignored"}}
    )
    assert out.status.phase == "Lost"
    assert out.spec.volume_name is None


def test_patch_missing_object_is_404(raw) -> None:
    status, _ = raw("PATCH", "/api/v1/namespaces/default/configmaps/none", {"data": {}}, MERGE)
    assert status == 404

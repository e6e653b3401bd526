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


def test_strategic_patch_merges_finalizers_and_deletes_from_primitive_lists(raw, made) -> None:
    """metadata.finalizers has patch strategy merge: a strategic patch adds to it (the
    patch's elements first, as on kube-apiserver 1.37)."""
    status, out = raw("PATCH", PATH, {"metadata": {"finalizers": ["x/three"]}}, STRATEGIC)
    assert status == 200
    assert out["metadata"]["finalizers"] == ["x/three", "x/one", "x/two"]
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x/three", "x/one"]}}
    _, out = raw("PATCH", PATH, patch, STRATEGIC)
    assert out["metadata"]["finalizers"] == ["x/two"]
    patch = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x/two"]}}
    _, out = raw("PATCH", PATH, patch, STRATEGIC)
    assert "finalizers" not in out["metadata"]


def test_strategic_patch_merges_keyed_lists_by_merge_key(raw) -> None:
    """Service ports merge on ``port``: kubectl apply's re-apply patch changes one port,
    deletes another and keeps the order it names."""
    svc = {
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}],
        },
    }
    assert raw("POST", "/api/v1/namespaces/default/services", svc)[0] == 201
    patch = {
        "spec": {
            "$setElementOrder/ports": [{"port": 8443}, {"port": 80}],
            "ports": [{"name": "https", "port": 8443}, {"$patch": "delete", "port": 443}],
        }
    }
    status, out = raw("PATCH", "/api/v1/namespaces/default/services/web", patch, STRATEGIC)
    assert status == 200, out
    assert [(p["name"], p["port"]) for p in out["spec"]["ports"]] == [
        ("https", 8443),
        ("http", 80),
    ]
    # a map merges key by key
    patch = {"spec": {"selector": {"tier": "front"}}}
    _, out = raw("PATCH", "/api/v1/namespaces/default/services/web", patch, STRATEGIC)
    assert out["spec"]["selector"] == {"app": "web", "tier": "front"}


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

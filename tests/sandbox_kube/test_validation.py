"""422 Invalid with the real field paths; defaults and immutability."""

from __future__ import annotations

import pytest


def _causes(body: dict) -> set[str]:
    return {c["field"] for c in body["details"]["causes"]}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"resources": {"requests": {"storage": "1Gi"}}}, "spec.accessModes"),
        ({"accessModes": ["ReadWriteOnce"]}, "spec.resources[storage]"),
        (
            {"accessModes": ["Sometimes"], "resources": {"requests": {"storage": "1Gi"}}},
            "spec.accessModes",
        ),
        (
            {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "lots"}}},
            "spec.resources[storage]",
        ),
    ],
)
def test_claim_validation(raw, spec: dict, field: str) -> None:
    status, body = raw(
        "POST",
        "/api/v1/namespaces/default/persistentvolumeclaims",
        {"metadata": {"name": "c"}, "spec": spec},
    )
    assert status == 422
    assert body["reason"] == "Invalid"
    assert body["details"]["kind"] == "PersistentVolumeClaim"
    assert field in _causes(body)


def test_volume_validation(raw, bodies) -> None:
    good = bodies.volume("v")
    no_source = bodies.volume("v")
    del no_source["spec"]["glusterfs"]
    status, body = raw("POST", "/api/v1/persistentvolumes", no_source)
    assert status == 422 and "spec" in _causes(body)
    two = bodies.volume("v")
    two["spec"]["hostPath"] = {"path": "/x"}
    status, body = raw("POST", "/api/v1/persistentvolumes", two)
    assert status == 422 and "spec.hostPath" in _causes(body)
    no_capacity = bodies.volume("v")
    del no_capacity["spec"]["capacity"]
    status, body = raw("POST", "/api/v1/persistentvolumes", no_capacity)
    assert status == 422 and "spec.capacity" in _causes(body)
    status, made = raw("POST", "/api/v1/persistentvolumes", good)
    assert status == 201
    assert made["status"]["phase"] == "Pending"
    made["spec"]["glusterfs"]["path"] = "other"
    del made["metadata"]["resourceVersion"]  # the binder may have written meanwhile
    status, body = raw("PUT", "/api/v1/persistentvolumes/v", made)
    assert status == 422 and "spec.persistentvolumesource" in _causes(body)


def test_claim_spec_is_immutable_except_requests_and_binding(raw, bodies) -> None:
    raw(
        "POST",
        "/api/v1/namespaces/default/persistentvolumeclaims",
        bodies.claim("c", storageClassName="gluster"),
    )
    path = "/api/v1/namespaces/default/persistentvolumeclaims/c"
    merge = "application/merge-patch+json"
    status, body = raw("PATCH", path, {"spec": {"accessModes": ["ReadWriteMany"]}}, merge)
    assert status == 422 and "spec" in _causes(body)
    # An unbound claim's request cannot change either (kube-apiserver 1.25 and 1.37
    # agree: tests/real/test_resize_clone.py); only a bound claim may grow.
    status, body = raw(
        "PATCH", path, {"spec": {"resources": {"requests": {"storage": "2Gi"}}}}, merge
    )
    assert status == 422 and "spec" in _causes(body)
    status, _ = raw("PATCH", path, {"spec": {"volumeName": "pv-1"}}, merge)
    assert status == 200
    status, body = raw("PATCH", path, {"spec": {"volumeName": "pv-2"}}, merge)
    assert status == 422


def test_storage_class_rules(raw, bodies) -> None:
    no_provisioner = bodies.storage_class()
    del no_provisioner["provisioner"]
    status, body = raw("POST", "/apis/storage.k8s.io/v1/storageclasses", no_provisioner)
    assert status == 422 and "provisioner" in _causes(body)
    raw("POST", "/apis/storage.k8s.io/v1/storageclasses", bodies.storage_class())
    patch = {"parameters": {"resturl": "http://elsewhere"}}
    status, body = raw(
        "PATCH",
        "/apis/storage.k8s.io/v1/storageclasses/gluster",
        patch,
        "application/merge-patch+json",
    )
    assert status == 422 and "parameters" in _causes(body)
    patch = {"metadata": {"labels": {"ok": "yes"}}}
    status, _ = raw(
        "PATCH",
        "/apis/storage.k8s.io/v1/storageclasses/gluster",
        patch,
        "application/merge-patch+json",
    )
    assert status == 200


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/namespaces/default/configmaps", "Bad_Name"),
        ("/api/v1/namespaces/default/configmaps", "x" * 254),
        ("/api/v1/namespaces", "has.dot"),
        ("/api/v1/namespaces/default/services", "1starts-with-digit"),
    ],
)
def test_names(raw, path: str, name: str) -> None:
    status, body = raw("POST", path, {"metadata": {"name": name}})
    assert status == 422
    assert "metadata.name" in _causes(body)


def test_name_required(raw) -> None:
    status, body = raw("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {}})
    assert status == 422 and "metadata.name" in _causes(body)


def test_secret_data_must_be_base64(raw, core) -> None:
    bad = {"metadata": {"name": "s"}, "data": {"key": "not base64!"}}
    status, body = raw("POST", "/api/v1/namespaces/default/secrets", bad)
    assert status == 400
    assert "base64" in body["message"]
    ok = {
        "metadata": {"name": "s"},
        "type": "kubernetes.io/glusterfs",
        "stringData": {"key": "secret"},
    }
    status, made = raw("POST", "/api/v1/namespaces/default/secrets", ok)
    assert status == 201
    assert made["data"] == {"key": "c2VjcmV0"}
    assert "stringData" not in made

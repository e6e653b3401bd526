"""Lists: shape, label/field selectors, and limit/continue pagination."""

from __future__ import annotations

import pytest
from kubernetes import client

from provisioner.sandbox.kube import KubeSandbox


def test_list_shape(raw, core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    status, body = raw("GET", "/api/v1/namespaces/default/configmaps")
    assert status == 200
    assert body["kind"] == "ConfigMapList"
    assert body["apiVersion"] == "v1"
    assert int(body["metadata"]["resourceVersion"]) > 0
    # as from kube-apiserver: List items carry no kind/apiVersion (the List has them)
    assert "kind" not in body["items"][0] and "apiVersion" not in body["items"][0]
    _, classes = raw("GET", "/apis/storage.k8s.io/v1/storageclasses")
    assert classes["kind"] == "StorageClassList"
    assert classes["apiVersion"] == "storage.k8s.io/v1"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a", "b"]),
        ("app==web", ["a", "b"]),
        ("app!=web", ["c", "d"]),
        ("app in (web,db)", ["a", "b", "c"]),
        ("app notin (web)", ["c", "d"]),
        ("tier", ["b"]),
        ("!tier", ["a", "c", "d"]),
        ("app=web,tier=front", ["b"]),
    ],
)
def test_label_selectors(core: client.CoreV1Api, selector: str, expected: list[str]) -> None:
    labels = {"a": {"app": "web"}, "b": {"app": "web", "tier": "front"}, "c": {"app": "db"}}
    for name in ("a", "b", "c", "d"):
        body = {"metadata": {"name": name, "labels": labels.get(name, {})}}
        core.create_namespaced_config_map("default", body)
    items = core.list_namespaced_config_map("default", label_selector=selector).items
    assert [i.metadata.name for i in items] == expected


def test_field_selectors(core: client.CoreV1Api, bodies, kube: KubeSandbox) -> None:
    core.create_namespaced_secret(
        "default", {"metadata": {"name": "g"}, "type": "kubernetes.io/glusterfs"}
    )
    core.create_namespaced_secret("default", {"metadata": {"name": "o"}})
    found = core.list_namespaced_secret("default", field_selector="type=kubernetes.io/glusterfs")
    assert [s.metadata.name for s in found.items] == ["g"]
    others = core.list_secret_for_all_namespaces(field_selector="metadata.name!=g")
    assert [s.metadata.name for s in others.items] == ["o"]
    core.create_namespaced_persistent_volume_claim("default", bodies.claim("c1"))
    pending = core.list_namespaced_persistent_volume_claim(
        "default", field_selector="status.phase=Pending"
    )
    assert [c.metadata.name for c in pending.items] == ["c1"]
    by_volume = core.list_namespaced_persistent_volume_claim(
        "default", field_selector="spec.volumeName=x"
    )
    assert by_volume.items == []


def test_event_field_selectors(core: client.CoreV1Api) -> None:
    for name, kind in (("e1", "PersistentVolumeClaim"), ("e2", "Pod")):
        core.create_namespaced_event(
            "default",
            {
                "metadata": {"name": name},
                "involvedObject": {"kind": kind, "name": "c", "namespace": "default", "uid": "u1"},
                "reason": "R",
                "message": "m",
            },
        )
    selector = (
        "involvedObject.kind=PersistentVolumeClaim,involvedObject.name=c,involvedObject.uid=u1"
    )
    found = core.list_namespaced_event("default", field_selector=selector)
    assert [e.metadata.name for e in found.items] == ["e1"]


def test_unknown_field_selector_is_bad_request(raw) -> None:
    status, body = raw("GET", "/api/v1/configmaps", query=[("fieldSelector", "spec.nope=1")])
    assert status == 400
    assert body["reason"] == "BadRequest"


def test_limit_and_continue_page_through_a_stable_snapshot(kube: KubeSandbox, core) -> None:
    kube.preload("configmaps", [{"metadata": {"name": f"cm{i:03d}"}} for i in range(25)])
    first = core.list_namespaced_config_map("default", limit=10)
    assert len(first.items) == 10
    assert first.metadata._continue
    assert first.metadata.remaining_item_count == 15
    # Writes between pages do not show up in, or shift, later pages.
    core.create_namespaced_config_map("default", {"metadata": {"name": "cm000a"}})
    core.delete_namespaced_config_map("cm020", "default")
    names = [i.metadata.name for i in first.items]
    token = first.metadata._continue
    while token:
        page = core.list_namespaced_config_map("default", limit=10, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        names += [i.metadata.name for i in page.items]
        token = page.metadata._continue
    assert names == [f"cm{i:03d}" for i in range(25)]


def test_continue_token_garbage_and_expiry(raw) -> None:
    status, body = raw("GET", "/api/v1/configmaps", query=[("continue", "bm90LWpzb24=")])
    assert status == 400
    import base64
    import json

    stale = base64.urlsafe_b64encode(json.dumps({"rv": 1, "s": "gone", "o": 1}).encode())
    status, body = raw("GET", "/api/v1/configmaps", query=[("continue", stale.decode())])
    assert status == 410
    assert body["reason"] == "Expired"


def test_large_list_with_preload(kube: KubeSandbox, core: client.CoreV1Api, bodies) -> None:
    kube.preload("persistentvolumes", [bodies.volume(f"pv-{i:05d}") for i in range(2000)])
    items = core.list_persistent_volume().items
    assert len(items) == 2000
    assert items[0].metadata.name == "pv-00000"
    assert items[0].metadata.uid

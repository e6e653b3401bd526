"""Fault injection and the request log."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from provisioner.sandbox.kube import KubeSandbox


def test_fail_next_writes(kube: KubeSandbox, core: client.CoreV1Api, bodies) -> None:
    kube.faults.fail_next_writes("persistentvolumeclaims", count=2, status=500, message="etcd down")
    for _ in range(2):
        with pytest.raises(ApiException) as info:
            core.create_namespaced_persistent_volume_claim("default", bodies.claim("c"))
        assert info.value.status == 500
        assert '"message":"etcd down"' in info.value.body
        assert '"reason":"InternalError"' in info.value.body
    core.create_namespaced_persistent_volume_claim("default", bodies.claim("c"))


def test_fail_next_writes_by_verb_and_subresource(kube, core, raw, bodies) -> None:
    core.create_namespaced_persistent_volume_claim("default", bodies.claim("c"))
    kube.faults.fail_next_writes(
        "persistentvolumeclaims/status", status=429, message="slow down", verbs={"patch"}
    )
    # Reads and other subresources are untouched.
    core.read_namespaced_persistent_volume_claim("c", "default")
    core.patch_namespaced_persistent_volume_claim(
        "c", "default", {"metadata": {"labels": {"a": "b"}}}
    )
    status, body = raw(
        "PATCH",
        "/api/v1/namespaces/default/persistentvolumeclaims/c/status",
        {"status": {"phase": "Pending"}},
        "application/merge-patch+json",
    )
    assert status == 429
    assert body["reason"] == "TooManyRequests"
    assert body["details"]["retryAfterSeconds"] == 1


def test_drop_watches_ends_open_streams(kube: KubeSandbox, core: client.CoreV1Api) -> None:
    import json

    import requests

    started = threading.Event()
    finished = threading.Event()

    def watch_it() -> None:
        url = f"{kube.url}/api/v1/configmaps?watch=1&timeoutSeconds=30"
        with requests.get(url, stream=True, timeout=30) as response:
            for line in response.iter_lines():
                if line and json.loads(line)["type"] == "ADDED":
                    started.set()
        finished.set()

    core.create_namespaced_config_map("default", {"metadata": {"name": "seed"}})
    thread = threading.Thread(target=watch_it, daemon=True)
    thread.start()
    assert started.wait(5)
    # The watch is registered before its first event is sent, so it is open now.
    assert kube.faults.drop_watches() == 1
    assert finished.wait(5), "the stream did not end after drop_watches()"


def test_expire_next_watch(kube: KubeSandbox, core: client.CoreV1Api) -> None:
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    kube.faults.expire_next_watch("configmaps")
    with pytest.raises(ApiException) as info:
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5
        ):
            pass
    assert info.value.status == 410
    # Only the next one.
    core.create_namespaced_config_map("default", {"metadata": {"name": "ok"}})
    stream = watch.Watch()
    for event in stream.stream(
        core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5
    ):
        assert event["type"] == "ADDED"
        stream.stop()


def test_expire_next_watch_of_other_resource_does_not_fire(kube, core) -> None:
    kube.faults.expire_next_watch("persistentvolumes")
    stream = watch.Watch()
    core.create_namespaced_config_map("default", {"metadata": {"name": "x"}})
    for event in stream.stream(core.list_namespaced_config_map, "default", timeout_seconds=5):
        assert event["type"] == "ADDED"
        stream.stop()


def test_latency_is_added(kube: KubeSandbox, core: client.CoreV1Api) -> None:
    import time

    kube.faults.latency = 0.2
    start = time.monotonic()
    core.list_namespace()
    elapsed = time.monotonic() - start
    kube.faults.latency = 0.0
    assert elapsed >= 0.2  # a lower bound only: the request cannot be faster than the delay


def test_request_log_records_rbac_verbs(kube: KubeSandbox, core, storage, raw, bodies) -> None:
    kube.clear_request_log()
    storage.create_storage_class(bodies.storage_class())
    core.create_namespaced_persistent_volume_claim("default", bodies.claim("c"))
    core.read_namespaced_persistent_volume_claim("c", "default")
    core.list_persistent_volume_claim_for_all_namespaces()
    core.patch_namespaced_persistent_volume_claim_status(
        "c", "default", {"status": {"phase": "Pending"}}
    )
    core.replace_namespaced_persistent_volume_claim(
        "c", "default", core.read_namespaced_persistent_volume_claim("c", "default")
    )
    core.delete_namespaced_persistent_volume_claim("c", "default")
    core.delete_collection_namespaced_config_map("default")
    raw("GET", "/api/v1/namespaces/default/persistentvolumeclaims/missing")
    for _ in watch.Watch().stream(
        core.list_namespaced_persistent_volume_claim, "default", timeout_seconds=1
    ):
        pass
    log = [
        (r.verb, r.group, r.resource, r.subresource, r.namespace, r.name, r.status)
        for r in kube.request_log
    ]
    assert log == [
        ("create", "storage.k8s.io", "storageclasses", "", "", "", 201),
        ("create", "", "persistentvolumeclaims", "", "default", "", 201),
        ("get", "", "persistentvolumeclaims", "", "default", "c", 200),
        ("list", "", "persistentvolumeclaims", "", "", "", 200),
        ("patch", "", "persistentvolumeclaims", "status", "default", "c", 200),
        ("get", "", "persistentvolumeclaims", "", "default", "c", 200),
        ("update", "", "persistentvolumeclaims", "", "default", "c", 200),
        ("delete", "", "persistentvolumeclaims", "", "default", "c", 200),
        ("deletecollection", "", "configmaps", "", "default", "", 200),
        ("get", "", "persistentvolumeclaims", "", "default", "missing", 404),
        ("watch", "", "persistentvolumeclaims", "", "default", "", 200),
    ]
    assert all(r.user_agent for r in kube.request_log)


def test_request_log_is_a_copy(kube: KubeSandbox, core) -> None:
    core.list_namespace()
    log = kube.request_log
    log.clear()
    assert kube.request_log

"""Watches through ``kubernetes.watch.Watch().stream``: resume, 410, bookmarks, selectors."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from provisioner.sandbox.kube import KubeSandbox


def _events(core: client.CoreV1Api, count: int, **kwargs) -> list[tuple[str, str]]:
    """The first ``count`` (type, name) pairs of a config-map watch in "default"."""
    seen: list[tuple[str, str]] = []
    stream = watch.Watch()
    for event in stream.stream(
        core.list_namespaced_config_map, "default", timeout_seconds=10, **kwargs
    ):
        seen.append((event["type"], event["raw_object"]["metadata"].get("name", "")))
        if len(seen) >= count:
            stream.stop()
    return seen


def test_watch_from_resource_version_replays_later_events(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "before"}})
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    core.patch_namespaced_config_map("a", "default", {"data": {"x": "1"}})
    core.delete_namespaced_config_map("a", "default")
    assert _events(core, 3, resource_version=rv) == [
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
    ]


def test_watch_without_resource_version_starts_with_current_state(core) -> None:
    for name in ("x", "y"):
        core.create_namespaced_config_map("default", {"metadata": {"name": name}})
    assert _events(core, 2) == [("ADDED", "x"), ("ADDED", "y")]


def test_watch_sees_writes_made_while_streaming(core: client.CoreV1Api) -> None:
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    stream = watch.Watch()
    got: list[str] = []
    started = threading.Event()

    def writer() -> None:
        started.wait(5)
        core.create_namespaced_config_map("default", {"metadata": {"name": "live"}})

    thread = threading.Thread(target=writer)
    thread.start()
    started.set()
    for event in stream.stream(
        core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=10
    ):
        got.append(event["raw_object"]["metadata"]["name"])
        stream.stop()
    thread.join()
    assert got == ["live"]


def test_deleted_event_carries_the_deletion_resource_version(core) -> None:
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    made = core.create_namespaced_config_map("default", {"metadata": {"name": "d"}})
    core.delete_namespaced_config_map("d", "default")
    stream = watch.Watch()
    versions = []
    for event in stream.stream(
        core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5
    ):
        versions.append(int(event["raw_object"]["metadata"]["resourceVersion"]))
        if event["type"] == "DELETED":
            stream.stop()
    assert versions[0] == int(made.metadata.resource_version)
    assert versions[1] > versions[0]


def test_too_old_resource_version_is_410_then_relist_works(core: client.CoreV1Api) -> None:
    with KubeSandbox(watch_cache_size=3) as small:
        from kubernetes import config

        api = config.new_client_from_config(config_file=small.kubeconfig_path)
        core2 = client.CoreV1Api(api)
        rv = core2.list_namespaced_config_map("default").metadata.resource_version
        for i in range(5):
            core2.create_namespaced_config_map("default", {"metadata": {"name": f"c{i}"}})
        with pytest.raises(ApiException) as info:
            for _ in watch.Watch().stream(
                core2.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=5
            ):
                pass
        assert info.value.status == 410
        listed = core2.list_namespaced_config_map("default")
        assert len(listed.items) == 5
        core2.create_namespaced_config_map("default", {"metadata": {"name": "after"}})
        stream = watch.Watch()
        for event in stream.stream(
            core2.list_namespaced_config_map,
            "default",
            resource_version=listed.metadata.resource_version,
            timeout_seconds=5,
        ):
            assert event["raw_object"]["metadata"]["name"] == "after"
            stream.stop()
        api.close()


def test_raw_410_is_an_error_event_with_expired_status(kube: KubeSandbox) -> None:
    import json

    import requests

    kube.preload("configmaps", [{"metadata": {"name": "p"}}])
    url = f"{kube.url}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=1"
    with requests.get(url, stream=True, timeout=5) as response:
        assert response.status_code == 200
        assert response.headers["Transfer-Encoding"] == "chunked"
        line = next(response.iter_lines())
    event = json.loads(line)
    assert event["type"] == "ERROR"
    assert event["object"]["kind"] == "Status"
    assert event["object"]["code"] == 410
    assert event["object"]["reason"] == "Expired"


def test_bookmarks_carry_a_resumable_resource_version(core: client.CoreV1Api) -> None:
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    # A write elsewhere moves the global resourceVersion past the list's.
    core.create_namespaced_secret("default", {"metadata": {"name": "elsewhere"}})
    stream = watch.Watch()
    bookmark = None
    for event in stream.stream(
        core.list_namespaced_config_map,
        "default",
        resource_version=rv,
        allow_watch_bookmarks=True,
        timeout_seconds=10,
    ):
        if event["type"] == "BOOKMARK":
            bookmark = event["raw_object"]
            stream.stop()
    assert bookmark is not None
    assert bookmark["kind"] == "ConfigMap"
    assert int(bookmark["metadata"]["resourceVersion"]) > int(rv)


def test_bookmark_at_end_of_timeout(kube: KubeSandbox) -> None:
    import json

    import requests

    url = (
        f"{kube.url}/api/v1/persistentvolumes?watch=true&allowWatchBookmarks=true"
        "&timeoutSeconds=1&resourceVersion=1"
    )
    with requests.get(url, stream=True, timeout=10) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert lines, "the stream ended without a bookmark"
    assert lines[-1]["type"] == "BOOKMARK"


def test_label_selector_turns_edits_into_added_and_deleted(core: client.CoreV1Api) -> None:
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "s"}})
    core.patch_namespaced_config_map("s", "default", {"metadata": {"labels": {"app": "x"}}})
    core.patch_namespaced_config_map("s", "default", {"data": {"k": "v"}})
    core.patch_namespaced_config_map("s", "default", {"metadata": {"labels": {"app": "y"}}})
    got = _events(core, 3, resource_version=rv, label_selector="app=x")
    assert got == [("ADDED", "s"), ("MODIFIED", "s"), ("DELETED", "s")]


def test_field_selector_applies_to_watches(core: client.CoreV1Api) -> None:
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    for name in ("one", "two"):
        core.create_namespaced_config_map("default", {"metadata": {"name": name}})
    got = _events(core, 1, resource_version=rv, field_selector="metadata.name=two")
    assert got == [("ADDED", "two")]


def test_watch_all_namespaces_and_legacy_path(kube: KubeSandbox, core) -> None:
    import json

    import requests

    core.create_namespaced_config_map("kube-system", {"metadata": {"name": "sys"}})
    url = f"{kube.url}/api/v1/watch/configmaps?timeoutSeconds=5"
    with requests.get(url, stream=True, timeout=10) as response:
        first = json.loads(next(response.iter_lines()))
    assert first["type"] == "ADDED"
    assert first["object"]["metadata"]["namespace"] == "kube-system"


def test_many_watchers_all_get_every_event(core: client.CoreV1Api) -> None:
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    for i in range(20):
        core.create_namespaced_config_map("default", {"metadata": {"name": f"m{i:02d}"}})
    results: list[list[tuple[str, str]]] = []

    def consume() -> None:
        results.append(_events(core, 20, resource_version=rv))

    threads = [threading.Thread(target=consume) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert len(results) == 4
    expected = [("ADDED", f"m{i:02d}") for i in range(20)]
    assert all(r == expected for r in results)


def test_legacy_watch_of_one_object(kube: KubeSandbox, core) -> None:
    import json

    import requests

    for name in ("a", "b"):
        core.create_namespaced_config_map("default", {"metadata": {"name": name}})
    url = f"{kube.url}/api/v1/watch/namespaces/default/configmaps/b?timeoutSeconds=1"
    with requests.get(url, stream=True, timeout=10) as response:
        names = [json.loads(line)["object"]["metadata"]["name"] for line in response.iter_lines()]
    assert names == ["b"]


def test_client_hanging_up_on_a_quiet_watch_frees_it(kube: KubeSandbox) -> None:
    import socket

    host, port = kube.url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)), timeout=5)
    conn.sendall(
        b"GET /api/v1/persistentvolumes?watch=1&resourceVersion=1 HTTP/1.1\r\nHost: sandbox\r\n\r\n"
    )
    assert conn.recv(15).startswith(b"HTTP/1.1 200")
    assert kube.store.wait_open_watches(1, "persistentvolumes")
    conn.close()
    assert kube.store.wait_open_watches(0, "persistentvolumes", timeout=10)

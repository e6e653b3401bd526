"""The informer against the Kubernetes sandbox: list+watch, 410 relist, reconnects, bookmarks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from provisioner.k8s.informer import Informer
from provisioner.k8s.kubeapi import KubeAPI
from provisioner.sandbox.kube import KubeSandbox

NS = "default"


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []

    def add(self, obj: dict[str, Any]) -> None:
        self._note("add", obj)

    def update(self, _old: dict[str, Any], new: dict[str, Any]) -> None:
        self._note("update", new)

    def delete(self, obj: dict[str, Any]) -> None:
        self._note("delete", obj)

    def _note(self, kind: str, obj: dict[str, Any]) -> None:
        with self.lock:
            self.events.append((kind, obj["metadata"]["name"]))

    def saw(self, kind: str, name: str) -> bool:
        with self.lock:
            return (kind, name) in self.events


def secret(name: str, value: str = "dg==") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": {"v": value}}


@pytest.fixture
def informer(kube: KubeAPI) -> Iterator[tuple[Informer, Recorder]]:
    for i in range(5):
        kube.create("secrets", secret(f"s{i}"), NS)
    inf = Informer(kube, "secrets", namespace=NS, page_size=2, watch_timeout=30)
    rec = Recorder()
    inf.add_handlers(on_add=rec.add, on_update=rec.update, on_delete=rec.delete)
    inf.start()
    assert inf.wait_for_sync(10)
    yield inf, rec
    inf.stop()


def test_lists_in_pages_then_follows_the_watch(informer, kube: KubeAPI, wait_for) -> None:
    inf, rec = informer
    assert sorted(inf.keys()) == [f"{NS}/s{i}" for i in range(5)]
    assert all(rec.saw("add", f"s{i}") for i in range(5))

    kube.create("secrets", secret("new"), NS)
    kube.patch("secrets", "s1", {"data": {"v": "eA=="}}, NS)
    kube.delete("secrets", "s2", NS)
    wait_for(lambda: rec.saw("add", "new") and rec.saw("update", "s1") and rec.saw("delete", "s2"))
    assert inf.get(f"{NS}/s2") is None
    assert inf.get(f"{NS}/s1")["data"] == {"v": "eA=="}
    assert inf.relists == 1


def test_a_410_on_the_watch_makes_it_relist(
    informer, kube: KubeAPI, kube_sandbox: KubeSandbox, wait_for
) -> None:
    inf, rec = informer
    kube_sandbox.faults.expire_next_watch("secrets")
    kube_sandbox.faults.drop_watches()
    wait_for(lambda: inf.relists >= 2, what="a relist after 410")
    kube.create("secrets", secret("after"), NS)
    wait_for(lambda: rec.saw("add", "after"))


def test_reconnects_after_the_stream_drops_without_relisting(
    informer, kube: KubeAPI, kube_sandbox: KubeSandbox, wait_for
) -> None:
    inf, rec = informer
    wait_for(lambda: inf.watches >= 1)
    kube_sandbox.faults.drop_watches()
    wait_for(lambda: inf.watches >= 2, what="a new watch")
    kube.create("secrets", secret("after-drop"), NS)
    wait_for(lambda: rec.saw("add", "after-drop"))
    assert inf.relists == 1


def test_relist_delivers_deletes_that_happened_while_not_watching(
    informer, kube: KubeAPI, wait_for
) -> None:
    inf, rec = informer
    inf.stop()
    kube.delete("secrets", "s3", NS)
    kube.patch("secrets", "s4", {"data": {"v": "eQ=="}}, NS)
    kube.create("secrets", secret("while-away"), NS)
    inf.start()
    wait_for(lambda: inf.relists >= 2)
    wait_for(
        lambda: rec.saw("delete", "s3") and rec.saw("update", "s4") and rec.saw("add", "while-away")
    )
    assert inf.get(f"{NS}/s3") is None


def test_bookmarks_advance_the_resource_version_of_a_quiet_watch(
    informer, kube: KubeAPI, wait_for
) -> None:
    inf, rec = informer
    listed = int(inf.resource_version)
    # Activity elsewhere moves the server's version; only a bookmark can tell us.
    other = kube.create(
        "services",
        {"metadata": {"name": "elsewhere"}, "spec": {"ports": [{"port": 1}]}},
        NS,
    )
    target = int(other["metadata"]["resourceVersion"])
    assert target > listed
    wait_for(lambda: int(inf.resource_version) >= target, what="a bookmark")
    assert len(rec.events) == 5


def test_unknown_event_types_are_skipped(informer) -> None:
    inf, rec = informer
    before = list(rec.events)
    inf._apply({"type": "SOMETHING-NEW", "object": {"metadata": {"name": "x"}}})
    assert rec.events == before
    assert inf.get(f"{NS}/x") is None


def test_a_keys_only_cache_answers_presence_and_still_reports_deletes(
    kube: KubeAPI, wait_for
) -> None:
    """``keys_only`` (the watched Endpoints/Services at 50,000 PVs): the cache keeps
    no object, yet handlers get names, including for a delete seen only by a relist."""
    for name in ("k1", "k2"):
        kube.create("secrets", secret(name), NS)
    inf = Informer(kube, "secrets", namespace=NS, watch_timeout=30, keys_only=True)
    rec = Recorder()
    inf.add_handlers(on_add=rec.add, on_update=rec.update, on_delete=rec.delete)
    inf.start()
    try:
        assert inf.wait_for_sync(10)
        assert inf.get(f"{NS}/k1") == {} and inf.get(f"{NS}/k1") is not None
        assert rec.saw("add", "k1") and rec.saw("add", "k2")
        kube.delete("secrets", "k1", NS)
        wait_for(lambda: rec.saw("delete", "k1"))
        assert inf.get(f"{NS}/k1") is None
        inf.stop()
        kube.delete("secrets", "k2", NS)
        inf.start()
        wait_for(lambda: rec.saw("delete", "k2"), what="the delete found by the relist")
    finally:
        inf.stop()

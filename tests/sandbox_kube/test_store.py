"""The store on its own: history bounds, backlog limits, immutability of snapshots."""

from __future__ import annotations

import pytest

from provisioner.sandbox.kube import store as store_module
from provisioner.sandbox.kube.store import Store, WatchExpired


def _obj(name: str) -> dict:
    return {"metadata": {"name": name, "namespace": "default"}}


def test_slow_watcher_is_closed_not_buffered_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "MAX_WATCH_BACKLOG", 3)
    store = Store()
    watcher = store.watch("configmaps", None, "1")
    for i in range(5):
        store.put("configmaps", _obj(f"c{i}"), "ADDED", None)
    assert watcher.closed
    assert store.open_watches() == 0


def test_history_ring_expires_old_versions() -> None:
    store = Store(watch_cache_size=2)
    start = str(store.resource_version)
    for i in range(3):
        store.put("configmaps", _obj(f"c{i}"), "ADDED", None)
    with pytest.raises(WatchExpired):
        store.watch("configmaps", None, start)
    # Other resources keep their own history.
    assert store.watch("secrets", None, start).queue.empty()


def test_snapshot_is_unaffected_by_later_writes() -> None:
    store = Store()
    store.put("configmaps", _obj("a"), "ADDED", None)
    rv, entries = store.snapshot("configmaps")
    store.put("configmaps", {**_obj("a"), "data": {"x": "1"}}, "MODIFIED", entries[0].obj)
    store.remove("configmaps", "default", "a")
    assert [e.obj["metadata"]["resourceVersion"] for e in entries] == [str(rv)]
    assert "data" not in entries[0].obj

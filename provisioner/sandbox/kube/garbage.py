"""The garbage collector of kube-controller-manager, as far as a client sees it.

An object's ``ownerReferences`` make it a dependent of its owners (found by uid).
- Background (the default): once an owner is gone, a dependent none of whose owners
  remain is deleted; one that still has an owner loses the references to the gone ones.
- Foreground: the owner, marked with ``foregroundDeletion``, has its dependents deleted
  and loses the finalizer once no dependent that ``blockOwnerDeletion`` remains.
- Orphan: the owner, marked with ``orphan``, has its uid removed from its dependents'
  references and then loses the finalizer.
Objects inserted with ``preload`` are not indexed (taken as already reconciled).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .deletion import FOREGROUND, ORPHAN
from .registry import Registry
from .resources import RESOURCES, ResourceType
from .status import ApiError
from .store import Event

Obj = dict[str, Any]
Key = tuple[str, str, str]  # (storage, namespace, name)
Item = tuple[str, ...]
_BY_STORAGE = {r.storage_key: r for r in RESOURCES if not r.storage}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES if not r.review}


def _refs(obj: Obj | None) -> list[Obj]:
    refs = ((obj or {}).get("metadata") or {}).get("ownerReferences") or []
    return [r for r in refs if isinstance(r, dict) and r.get("uid")]


class GarbageCollector:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._store = registry.store
        self._dependents: dict[str, set[Key]] = {}  # owner uid → dependents

    def observe(self, storage: str, event: Event) -> list[Item]:
        """Index owner references (under the store lock: quick, no writes); returns
        the objects to look at."""
        obj = event.entry.obj
        meta = obj["metadata"]
        key = (storage, meta.get("namespace") or "", meta["name"])
        for ref in _refs(event.old) + (_refs(obj) if event.type == "DELETED" else []):
            known = self._dependents.get(ref["uid"])
            if known is not None:
                known.discard(key)
                if not known:
                    del self._dependents[ref["uid"]]
        items: list[Item] = []
        if event.type == "DELETED":
            # its dependents may be orphans now; an owner waiting on it may be free
            items += [("gc", *k) for k in self._dependents.get(meta.get("uid", ""), ())]
            items += [("gc-owner", *self._owner_key(ref, key)) for ref in _refs(obj)]
            return items
        for ref in _refs(obj):
            self._dependents.setdefault(ref["uid"], set()).add(key)
        if event.type == "ADDED" and _refs(obj):
            items.append(("gc", *key))  # an owner that does not exist: collected too
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp") and {ORPHAN, FOREGROUND} & set(finalizers):
            items.append(("gc-owner", *key))
        return items

    @staticmethod
    def _owner_key(ref: Obj, dependent: Key) -> Key:
        group_version, kind = str(ref.get("apiVersion", "")), str(ref.get("kind", ""))
        rt = _BY_KIND.get((group_version, kind))
        if rt is None:
            return ("", "", "")
        return (rt.storage_key, dependent[1] if rt.namespaced else "", str(ref.get("name", "")))

    def _exists(self, ref: Obj, dependent: Key) -> bool:
        storage, ns, name = self._owner_key(ref, dependent)
        owner = self._store.get(storage, ns, name) if storage else None
        return owner is not None and owner["metadata"].get("uid") == ref["uid"]

    def sync(self, item: Item) -> None:
        storage, ns, name = item[1:4]
        rt = _BY_STORAGE.get(storage)
        obj = self._store.get(storage, ns, name) if rt else None
        if rt is None or obj is None:
            return
        meta = obj["metadata"]
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp") and ORPHAN in finalizers:
            self._orphan(rt, obj)
        elif meta.get("deletionTimestamp") and FOREGROUND in finalizers:
            self._foreground(rt, obj)
        if item[0] == "gc" and _refs(obj):
            self._collect(rt, (storage, ns, name), obj)

    def _dependents_of(self, uid: str) -> list[tuple[ResourceType, Obj]]:
        found = []
        for storage, ns, name in sorted(self._dependents.get(uid, ())):
            obj = self._store.get(storage, ns, name)
            if obj is not None and any(r["uid"] == uid for r in _refs(obj)):
                found.append((_BY_STORAGE[storage], obj))
        return found

    def _orphan(self, rt: ResourceType, owner: Obj) -> None:
        uid = owner["metadata"]["uid"]
        for dep_rt, dep in self._dependents_of(uid):
            self._mutate(dep_rt, dep, lambda o: _keep_refs(o, lambda r: r["uid"] != uid))
        self._mutate(rt, owner, _drop_finalizer(ORPHAN))

    def _foreground(self, rt: ResourceType, owner: Obj) -> None:
        uid = owner["metadata"]["uid"]
        blocking = 0
        for dep_rt, dep in self._dependents_of(uid):
            ref = next(r for r in _refs(dep) if r["uid"] == uid)
            blocking += bool(ref.get("blockOwnerDeletion"))
            if not dep["metadata"].get("deletionTimestamp"):
                self._delete(dep_rt, dep)
        if not blocking:
            self._mutate(rt, owner, _drop_finalizer(FOREGROUND))

    def _collect(self, rt: ResourceType, key: Key, obj: Obj) -> None:
        """A dependent whose owners are all gone is deleted; one with an owner left
        loses the references to the gone ones."""
        refs = _refs(obj)
        alive = [r for r in refs if self._exists(r, key)]
        if not alive:
            self._delete(rt, obj)
        elif len(alive) < len(refs):
            kept = {r["uid"] for r in alive}
            self._mutate(rt, obj, lambda o: _keep_refs(o, lambda r: r["uid"] in kept))

    def _delete(self, rt: ResourceType, obj: Obj) -> None:
        meta = obj["metadata"]
        options = {"propagationPolicy": "Background", "preconditions": {"uid": meta["uid"]}}
        try:
            self._registry.delete(rt, meta.get("namespace", ""), meta["name"], options)
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

    def _mutate(self, rt: ResourceType, obj: Obj, change: Callable[[Obj], None]) -> None:
        meta = obj["metadata"]
        self._registry.mutate(rt, meta.get("namespace", ""), meta["name"], change)


def _keep_refs(obj: Obj, keep: Callable[[Obj], bool]) -> None:
    refs = [r for r in obj["metadata"].get("ownerReferences") or [] if keep(r)]
    if refs:
        obj["metadata"]["ownerReferences"] = refs
    else:
        obj["metadata"].pop("ownerReferences", None)


def _drop_finalizer(name: str) -> Callable[[Obj], None]:
    def change(obj: Obj) -> None:
        obj["metadata"]["finalizers"] = [
            f for f in obj["metadata"].get("finalizers") or [] if f != name
        ]

    return change

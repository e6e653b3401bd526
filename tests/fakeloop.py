"""The controller loop without threads, HTTP or real time, for table tests.

``Loop`` builds a real ``Controller`` on a fake clock, with in-memory caches
(``FakeInformer``) and an in-memory API (``FakeKube``) whose writes reach the caches
at once, as a watch would deliver them. The test drives it: it puts objects into
the caches as a user (or the binder) would, calls ``run()`` to handle every key
that is due now, and ``advance(seconds)`` to let backoff delays pass.
"""

from __future__ import annotations

import builtins
import copy
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from provisioner.config import Settings
from provisioner.controller.caches import Caches
from provisioner.controller.contract import ProvisionError, WatchedKind, pv_name
from provisioner.controller.keys import (
    ANN_PROVISIONED_BY,
    ANN_STORAGE_PROVISIONER,
    FINALIZER,
)
from provisioner.controller.loop import Controller
from provisioner.k8s.errors import KubeAlreadyExists, KubeConflict, KubeNotFound
from provisioner.k8s.informer import Transform, object_key
from tests.fakeclock import FakeClock

Obj = dict[str, Any]
ME = "example.com/stub"
NAMESPACE = "default"
_versions = itertools.count(1)


def _stamp(obj: Obj) -> Obj:
    obj = copy.deepcopy(obj)
    obj.setdefault("metadata", {})["resourceVersion"] = str(next(_versions))
    return obj


class FakeInformer:
    """What the controller uses of an ``Informer``, filled by the test or ``FakeKube``."""

    def __init__(self, resource: str, transform: Transform | None = None) -> None:
        self.resource = resource
        self.transform = transform
        self._cache: dict[str, Obj] = {}
        self._handlers: builtins.list[dict[str, Callable[..., None] | None]] = []

    def add_handlers(self, *, on_add=None, on_update=None, on_delete=None) -> None:  # type: ignore[no-untyped-def]
        self._handlers.append({"add": on_add, "update": on_update, "delete": on_delete})

    def start(self) -> None: ...

    def stop(self, timeout: float = 0.0) -> None: ...

    def wait_for_sync(self, timeout: float) -> bool:
        return True

    def has_synced(self) -> bool:
        return True

    def alive(self) -> bool:
        return True

    def get(self, key: str) -> Obj | None:
        return self._cache.get(key)

    def list(self) -> builtins.list[Obj]:
        return builtins.list(self._cache.values())

    def put(self, obj: Obj) -> Obj:
        """Store a new version (as a watch event would deliver it) and notify."""
        obj = _stamp(obj)
        if self.transform is not None:
            obj = self.transform(obj)
        key = object_key(obj)
        before = self._cache.get(key)
        self._cache[key] = obj
        for h in self._handlers:
            if before is None and h["add"]:
                h["add"](obj)
            elif before is not None and h["update"]:
                h["update"](before, obj)
        return obj

    def remove(self, key: str) -> None:
        gone = self._cache.pop(key, None)
        for h in self._handlers:
            if gone is not None and h["delete"]:
                h["delete"](gone)


class FakeCaches(Caches):
    def _informer(  # type: ignore[override]
        self,
        resource: str,
        selector: str | None = None,
        transform: Transform | None = None,
        *,
        keys_only: bool = False,
    ) -> FakeInformer:
        return FakeInformer(resource, transform)


class FakeKube:
    """The API calls the loop makes; PV writes go straight to the PV cache."""

    def __init__(self, caches: FakeCaches, version: str = "v1.25.16") -> None:
        self.caches = caches
        self.version = version
        self.events: list[Obj] = []
        self.fail_pv_create: int | None = None  # an HTTP status to refuse PVs with

    def server_version(self) -> str:
        return self.version

    def create(self, resource: str, body: Obj, namespace: str | None = None) -> Obj:
        if resource == "events":
            self.events.append(copy.deepcopy(body))
            return body
        assert resource == "persistentvolumes", resource
        if self.fail_pv_create is not None:
            from provisioner.k8s.errors import error_from_status

            raise error_from_status(self.fail_pv_create, "refused")
        name = body["metadata"]["name"]
        if self.caches.pvs.get(name) is not None:
            raise KubeAlreadyExists(409, "AlreadyExists", name)
        body = copy.deepcopy(body)
        body["metadata"]["uid"] = f"uid-{name}"
        return self.caches.pvs.put(body)

    def patch(self, resource: str, name: str, patch: Obj, namespace: str | None = None) -> Obj:
        if resource == "events":
            event = next(e for e in self.events if e["metadata"]["name"] == name)
            event.update(patch)
            return event
        assert resource == "persistentvolumes", resource
        pv = self.get(resource, name)
        wanted = patch["metadata"].get("resourceVersion")
        if wanted is not None and wanted != pv["metadata"]["resourceVersion"]:
            raise KubeConflict(409, "Conflict", name)
        pv["metadata"]["finalizers"] = patch["metadata"]["finalizers"]
        self._settle(pv)
        return pv

    def get(self, resource: str, name: str, namespace: str | None = None) -> Obj:
        assert resource == "persistentvolumes", resource
        found = self.caches.pvs.get(name)
        if found is None:
            raise KubeNotFound(404, "NotFound", name)
        return copy.deepcopy(found)

    def delete(
        self, resource: str, name: str, namespace: str | None = None, *, uid: str | None = None
    ) -> None:
        assert resource == "persistentvolumes", resource
        pv = self.get(resource, name)
        pv["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        self._settle(pv)

    def _settle(self, pv: Obj) -> None:
        """Write a PV back; one being deleted goes once no finalizer holds it."""
        meta = pv["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self.caches.pvs.remove(meta["name"])
        else:
            self.caches.pvs.put(pv)

    def reasons(self) -> list[tuple[str, str]]:
        """(type, reason) of every event written, in order."""
        return [(e["type"], e["reason"]) for e in self.events]


class StubBackend:
    """A ``Provisioner`` that answers from a script: each entry is the error to raise
    on that call, or None for success (the script's last answer repeats)."""

    def __init__(
        self,
        provision: Sequence[ProvisionError | None] = (None,),
        delete: Sequence[ProvisionError | None] = (None,),
    ) -> None:
        self.provision_script = list(provision)
        self.delete_script = list(delete)
        self.provisioned: list[str] = []  # claim names, one per call
        self.deleted: list[str] = []  # PV names, one per call

    @staticmethod
    def _answer(script: list[ProvisionError | None], call: int) -> None:
        error = script[min(call, len(script) - 1)]
        if error is not None:
            raise error

    def provision(self, claim: Obj, storage_class: Obj) -> Obj:
        self.provisioned.append(claim["metadata"]["name"])
        self._answer(self.provision_script, len(self.provisioned) - 1)
        meta = claim["metadata"]
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": pv_name(meta["uid"]),
                "annotations": {ANN_PROVISIONED_BY: ME},
                "finalizers": [FINALIZER],
            },
            "spec": {
                "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy", "Delete"),
                "storageClassName": storage_class["metadata"]["name"],
                "claimRef": {
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }

    def delete(self, pv: Obj) -> None:
        self.deleted.append(pv["metadata"]["name"])
        self._answer(self.delete_script, len(self.deleted) - 1)


class Loop:
    """A controller on a fake clock; see the module docstring."""

    def __init__(self, backend: Any, *, version: str = "v1.25.16", **settings: Any) -> None:
        """``version``: the API server's gitVersion; ``settings`` override ``Settings``."""
        self.clock = FakeClock()
        self.settings = replace(
            Settings(provisioner_name=ME, backoff_base=1.0, backoff_cap=8.0),
            **settings,
        )
        self.caches = FakeCaches(None, self.settings)  # type: ignore[arg-type]
        self.kube = FakeKube(self.caches, version)
        self.backend = backend
        self.controller = Controller(
            self.kube,  # type: ignore[arg-type]
            backend,
            self.settings,
            caches=self.caches,
            clock=self.clock,
        )
        self.controller.sync_caches(sync_timeout=0.0)

    @property
    def claims(self) -> FakeInformer:
        return self.caches.claims  # type: ignore[return-value]

    @property
    def pvs(self) -> FakeInformer:
        return self.caches.pvs  # type: ignore[return-value]

    @property
    def classes(self) -> FakeInformer:
        return self.caches.classes  # type: ignore[return-value]

    def run(self) -> list[tuple[str, str]]:
        """Handle every key that is due now, as the workers would; the keys handled."""
        handled = []
        queue = self.controller.queue
        while (key := queue.get(timeout=0)) is not None:
            try:
                self.controller.process(key)
            finally:
                queue.done(key)
            handled.append(key)
        return handled

    def advance(self, seconds: float) -> list[tuple[str, str]]:
        self.clock.advance(seconds)
        return self.run()

    # -- what a user (or the binder) does ------------------------------------------

    def storage_class(self, name: str = "gold", **fields: Any) -> Obj:
        body = {"metadata": {"name": name}, "provisioner": ME, **fields}
        return self.classes.put(body)

    def claim(self, name: str = "data", class_name: str = "gold", **spec: Any) -> Obj:
        body = {
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "uid": f"uid-{name}",
                "annotations": {ANN_STORAGE_PROVISIONER: ME},
            },
            "spec": {"storageClassName": class_name, "accessModes": ["ReadWriteOnce"], **spec},
        }
        return self.claims.put(body)

    def bind(self, claim: Obj) -> Obj:
        """The binder: claim and PV Bound to each other."""
        volume = pv_name(claim["metadata"]["uid"])
        pv = copy.deepcopy(self.pvs.get(volume))
        assert pv is not None, f"no PV {volume}"
        pv["status"] = {"phase": "Bound"}
        self.pvs.put(pv)
        bound = copy.deepcopy(claim)
        bound["spec"]["volumeName"] = volume
        bound["status"] = {"phase": "Bound"}
        return self.claims.put(bound)

    def delete_claim(self, claim: Obj) -> None:
        """The claim goes; the binder marks its PV Released."""
        self.claims.remove(object_key(claim))
        volume = (claim.get("spec") or {}).get("volumeName")
        pv = copy.deepcopy(self.pvs.get(volume)) if volume else None
        if pv is not None:
            pv["status"] = {"phase": "Released"}
            self.pvs.put(pv)


class RepairingBackend(StubBackend):
    """A ``StubBackend`` that keeps one watched object beside each PV."""

    kinds = (WatchedKind("configmaps", "example.com/stub"),)

    def __init__(self, **script: Any) -> None:
        super().__init__(**script)
        self.repaired: list[str] = []

    def watched_kinds(self) -> Iterable[WatchedKind]:
        return self.kinds

    def watched_key(self, pv: Obj) -> str | None:
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        return f"{ref.get('namespace')}/beside-{ref.get('name')}" if ref else None

    def repair(self, pv: Obj) -> bool:
        self.repaired.append(pv["metadata"]["name"])
        return True

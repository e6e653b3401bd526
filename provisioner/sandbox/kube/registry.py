"""REST semantics on top of the store: what create/update/patch/delete mean.

This is the part of kube-apiserver's generic registry the controller depends on:
server-set metadata, optimistic concurrency on resourceVersion, status subresources,
finalizers with deletionTimestamp, delete preconditions, paginated lists with stable
continue tokens. HTTP-free so that the control-plane emulation and Python-side test
helpers use exactly the same rules as clients.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from typing import Any

from . import admission, deletion, events, openapi, services, update_validation, validation
from .deletion import Deleted
from .paging import Pages
from .patching import apply_patch
from .resources import ResourceType
from .status import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    invalid,
    not_found,
)
from .store import Entry, Store, now

Obj = dict[str, Any]
Filter = Callable[[Obj], bool] | None
_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def copy_obj(obj: Obj) -> Obj:
    """A private deep copy (JSON round trip: faster than copy.deepcopy for JSON data)."""
    copied: Obj = json.loads(json.dumps(obj))
    return copied


# PersistentVolume status.lastPhaseTransitionTime: set by the API server from 1.29 on
# (beta, on by default; GA in 1.31) whenever the phase changes, and on create.
PHASE_TRANSITION_SINCE = (1, 29)


class Registry:
    def __init__(self, store: Store, *, release: tuple[int, int] = (1, 25)) -> None:
        """``release``: the Kubernetes minor the sandbox speaks as, where validation
        differs between releases (a claim's smaller request: 1.32+) and where the
        registry does (a PV's lastPhaseTransitionTime: 1.29+)."""
        self.store = store
        self.release = release
        self._pages = Pages(store)

    # -- shape conversion ------------------------------------------------------

    @staticmethod
    def present(rt: ResourceType, obj: Obj) -> Obj:
        """The stored object as the requested group/version shows it."""
        if rt.storage and rt.group == "events.k8s.io":
            return events.from_core(obj)
        return obj

    @staticmethod
    def ingest(rt: ResourceType, body: Any) -> Obj:
        """A body in the stored shape, after its kind and apiVersion are checked."""
        if not isinstance(body, dict):
            raise bad_request("the request body must be a JSON object")
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if kind not in (None, "", rt.kind) or api_version not in (None, "", rt.api_version):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
                if api_version != rt.api_version
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        if rt.storage and rt.group == "events.k8s.io":
            body = events.to_core(body)
            storage_api = "v1"
        else:
            storage_api = rt.api_version
        if not isinstance(body.get("metadata"), dict):
            body["metadata"] = {}
        else:
            body["metadata"] = dict(body["metadata"])
        body["kind"] = rt.kind
        body["apiVersion"] = storage_api
        obj: Obj = body
        return obj

    # -- reads -----------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.store.get(rt.storage_key, namespace if rt.namespaced else "", name)
        if obj is None:
            raise not_found(rt, name)
        return obj

    def list_entries(
        self,
        rt: ResourceType,
        namespace: str | None,
        match: Filter,
        *,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> tuple[int, list[Entry], str | None, int]:
        """(list resourceVersion, entries, continue token, remaining item count)."""
        return self._pages.list_entries(
            rt.storage_key, namespace, match, limit=limit, continue_token=continue_token
        )

    # -- writes ----------------------------------------------------------------

    def _check_namespace(self, rt: ResourceType, namespace: str) -> None:
        if not rt.namespaced:
            return
        ns = self.store.get("namespaces", "", namespace)
        if ns is None:
            raise ApiError(
                404,
                f'namespaces "{namespace}" not found',
                details={"name": namespace, "kind": "namespaces"},
            )
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f'{rt.plural} "{ns["metadata"]["name"]}" is forbidden: unable to create new '
                f"content in namespace {namespace} because it is being terminated",
            )

    def create(self, rt: ResourceType, namespace: str, body: Any, *, dry_run: bool = False) -> Obj:
        """``dry_run``: every check and default, nothing stored (no resourceVersion)."""
        obj = self.ingest(rt, body)
        meta = obj["metadata"]
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request(
                    "the namespace of the provided object does not match the namespace "
                    "sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        for field in (
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "selfLink",
        ):
            meta.pop(field, None)
        if rt.plural == "secrets":
            validation.decode_secret_data(obj)
        if rt.plural in ("persistentvolumes", "persistentvolumeclaims"):
            obj.pop("status", None)  # the API server resets it on create (phase Pending)
        validation.apply_defaults(rt, obj)
        self._stamp_phase(rt, None, obj)
        with self.store.lock:
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = self._generated_name(rt, namespace, meta["generateName"])
            validation.validate_create(rt, obj)
            self._check_namespace(rt, namespace)
            if self.store.get(rt.storage_key, meta.get("namespace", ""), meta["name"]):
                raise already_exists(rt, meta["name"])
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            admission.admit_create(self.store, rt.plural, obj)
            if rt.plural == "services":
                services.allocate(self.store, obj, dry_run=dry_run)
            if dry_run:
                return obj
            return self.store.put(rt.storage_key, obj, "ADDED", None)

    def _generated_name(self, rt: ResourceType, namespace: str, prefix: str) -> str:
        for _ in range(100):
            name = prefix + "".join(random.choice(_NAME_CHARS) for _ in range(5))
            if self.store.get(rt.storage_key, namespace if rt.namespaced else "", name) is None:
                return name
        raise ApiError(500, "could not generate a unique name")

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        subresource: str = "",
        *,
        dry_run: bool = False,
    ) -> Obj:
        original = copy_obj(body) if rt.create_on_update else None
        new = self.ingest(rt, body)
        meta = new["metadata"]
        if meta.get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on "
                f"the URL ({name})"
            )
        meta["name"] = name
        with self.store.lock:
            ns = namespace if rt.namespaced else ""
            current = self.store.get(rt.storage_key, ns, name)
            if current is None:
                if rt.create_on_update and not subresource:
                    return self.create(rt, namespace, original, dry_run=dry_run)
                raise not_found(rt, name)
            wanted_rv = meta.get("resourceVersion")
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            return self._replace(rt, current, new, subresource, dry_run=dry_run)

    def _replace(
        self, rt: ResourceType, current: Obj, new: Obj, subresource: str, *, dry_run: bool = False
    ) -> Obj:
        """Commit ``new`` over ``current`` (lock held); no-op writes keep the old version;
        a dry run answers what would be written, at the current resourceVersion."""
        old_meta = current["metadata"]
        if subresource == "status":
            status = new.get("status")
            new = dict(current)
            new["metadata"] = dict(old_meta)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        else:
            meta = new["metadata"]
            for field in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "namespace",
                "deletionGracePeriodSeconds",
            ):
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            meta.pop("managedFields", None)
            if rt.has_status:
                if "status" in current:
                    new["status"] = current["status"]
                else:
                    new.pop("status", None)
            if rt.plural == "secrets":
                validation.decode_secret_data(new)
            validation.apply_defaults(rt, new)
            if rt.plural == "services":
                services.keep_allocated(current, new)
            if old_meta.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
                if added:
                    # Go's %#v of the added ones, in the new list's order
                    found = [f for f in meta.get("finalizers") or [] if f in added]
                    listed = ", ".join(json.dumps(f) for f in found)
                    raise invalid(
                        rt,
                        old_meta["name"],
                        [
                            (
                                "metadata.finalizers",
                                "FieldValueForbidden",
                                "Forbidden: no new finalizers can be added if the object is being "
                                f"deleted, found new finalizers []string{{{listed}}}",
                            )
                        ],
                    )
            update_validation.validate_update(rt, current, new, release=self.release)
            admission.admit_update(self.store, rt.plural, current, new)
        self._stamp_phase(rt, current, new)
        new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        if new == current or dry_run:
            return current if new == current else new
        if old_meta.get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            # As the real registry: the update that lifts the last finalizer deletes
            # instead of writing; watchers see one DELETED with the last stored state,
            # the writer gets its object at the deletion's resourceVersion.
            final = self.store.remove(
                rt.storage_key, old_meta.get("namespace", ""), old_meta["name"]
            )
            assert final is not None
            new["metadata"]["resourceVersion"] = final["metadata"]["resourceVersion"]
            return new
        return self.store.put(rt.storage_key, new, "MODIFIED", current)

    def _stamp_phase(self, rt: ResourceType, old: Obj | None, new: Obj) -> None:
        """A PV's phase change (or create) stamps status.lastPhaseTransitionTime, as the
        real registry does from 1.29 on; a stamp the writer changed itself is kept, and
        one it left out while keeping the phase is carried over."""
        if rt.plural != "persistentvolumes" or self.release < PHASE_TRANSITION_SINCE:
            return
        status = new.get("status")
        if not isinstance(status, dict):
            return
        before = (old or {}).get("status") or {}
        stamp, old_stamp = (
            status.get("lastPhaseTransitionTime"),
            before.get("lastPhaseTransitionTime"),
        )
        if old is not None and before.get("phase") == status.get("phase"):
            if stamp is None and old_stamp is not None:  # same phase: the old stamp stays
                new["status"] = {**status, "lastPhaseTransitionTime": old_stamp}
            return
        if old is not None and stamp not in (None, old_stamp):
            return  # the writer set its own
        new["status"] = {**status, "lastPhaseTransitionTime": now()}

    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        patch: Any,
        subresource: str = "",
        check: Callable[[Obj], Obj] | None = None,
        *,
        dry_run: bool = False,
    ) -> Obj:
        """``check`` sees the patched object before it is stored (field validation:
        it may refuse it or return it without unknown fields)."""
        with self.store.lock:
            current = self.get(rt, namespace, name)
            target = copy_obj(self.present(rt, current))
            schema_name = openapi.kind_schema(rt)
            schemas = openapi.schema_data()["schemas"]
            schema = schemas.get(schema_name) if schema_name else None
            patched = apply_patch(content_type, target, patch, schema, schemas)
            if check is not None:
                patched = check(patched)
            wanted_rv = (patched.get("metadata") or {}).get("resourceVersion")
            if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
                raise conflict(rt, name)
            return self._replace(
                rt, current, self.ingest(rt, patched), subresource, dry_run=dry_run
            )

    def mutate(
        self, rt: ResourceType, namespace: str, name: str, change: Callable[[Obj], None]
    ) -> Obj | None:
        """Read-modify-write under the lock, for the control plane (no conflicts possible)."""
        with self.store.lock:
            current = self.store.get(rt.storage_key, namespace, name)
            if current is None:
                return None
            new = copy_obj(current)
            change(new)
            if new == current:
                return current
            status_changed = new.get("status") != current.get("status")
            result = current
            if status_changed and rt.has_status:
                result = self._replace(rt, current, copy_obj(new), "status")
                new["metadata"]["resourceVersion"] = result["metadata"]["resourceVersion"]
            if {k: v for k, v in new.items() if k != "status"} != {
                k: v for k, v in result.items() if k != "status"
            }:
                result = self._replace(rt, result, new, "")
            return result

    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> Deleted:
        """Remove the object, or mark it when finalizers are pending (deletion.py)."""
        return deletion.delete(self, rt, namespace, name, options or {}, dry_run)

    def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        match: Filter,
        options: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> tuple[int, list[Obj]]:
        return deletion.delete_collection(self, rt, namespace, match, options or {}, dry_run)

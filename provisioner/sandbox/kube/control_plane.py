"""Emulation of the kube-controller-manager loops a storage provisioner relies on.

The PV controller (binder): pre-bound volumes (``spec.claimRef``) are bound to their
claims, storage-provisioner annotations and the ExternalProvisioning event tell an
external provisioner that a claim is its to serve, volumes whose claim is gone become
Released. Plus the protection finalizers and namespace termination.

It runs on one thread, woken by store changes through a condition variable (no polling):
a store listener marks the affected keys dirty and each key is reconciled from the
current state, so the loop converges however writes interleave. It writes through the
registry, so its writes are ordinary API writes (new resourceVersion, watch events).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

from .admission import BETA_CLASS_ANNOTATION, PV_PROTECTION, PVC_PROTECTION
from .registry import Registry, now
from .resources import RESOURCES, lookup
from .status import ApiError
from .store import Event

Obj = dict[str, Any]
Item = tuple[str, ...]
log = logging.getLogger(__name__)

COMPONENT = "persistentvolume-controller"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
PROVISIONER_ANNOTATIONS = (
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
)
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
EXTERNAL_PROVISIONING_MESSAGE = (
    "Waiting for a volume to be created either by the external provisioner '{}' or "
    "manually by the system administrator. If volume creation is delayed, please verify "
    "that your external provisioner is running and correctly registered."
)

_PVC = lookup("", "v1", "persistentvolumeclaims")
_PV = lookup("", "v1", "persistentvolumes")
_EVENTS = lookup("", "v1", "events")
_NAMESPACES = lookup("", "v1", "namespaces")
assert _PVC and _PV and _EVENTS and _NAMESPACES
_NAMESPACED_STORAGE = sorted({r.storage_key for r in RESOURCES if r.namespaced})


def _ann(obj: Obj) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


class ControlPlane:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._store = registry.store
        self._cond = threading.Condition()
        self._dirty: dict[Item, None] = {}
        self._busy = False
        self._stopped = False
        self._pv_by_claim: dict[tuple[str, str], set[str]] = {}
        self._announced: set[tuple[str, str]] = set()
        self._thread: threading.Thread | None = None
        self._store.add_listener(self._on_change)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kube-control-plane", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every change seen so far has been reconciled (tests use this)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._dirty or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # -- change intake (called under the store lock: quick, no writes) ----------

    def _on_change(self, storage: str, event: Event) -> None:
        obj, old = event.entry.obj, event.old
        meta = obj["metadata"]
        items: list[Item] = []
        if storage == "persistentvolumeclaims":
            items.append(("pvc", meta["namespace"], meta["name"]))
        elif storage == "persistentvolumes":
            name = meta["name"]
            for before in (old, obj):
                ref = ((before or {}).get("spec") or {}).get("claimRef")
                if ref:
                    key = (ref.get("namespace", ""), ref.get("name", ""))
                    self._pv_by_claim.get(key, set()).discard(name)
                    items.append(("pvc", *key))
            ref = (obj.get("spec") or {}).get("claimRef")
            if ref and event.type != "DELETED":
                key = (ref.get("namespace", ""), ref.get("name", ""))
                self._pv_by_claim.setdefault(key, set()).add(name)
            items.append(("pv", name))
        elif storage == "storageclasses":
            items.append(("classes",))
        elif storage == "pods":
            for volume in (obj.get("spec") or {}).get("volumes") or []:
                claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
                if claim:
                    items.append(("pvc", meta["namespace"], claim))
        elif storage == "namespaces":
            items.append(("ns", meta["name"]))
        if event.type == "DELETED" and meta.get("namespace"):
            ns = self._store.get("namespaces", "", meta["namespace"])
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                items.append(("ns", meta["namespace"]))
        if items:
            with self._cond:
                for item in items:
                    self._dirty[item] = None
                self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._dirty and not self._stopped:
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait()
                if self._stopped:
                    return
                batch = list(self._dirty)
                self._dirty.clear()
                self._busy = True
            for item in batch:
                try:
                    self._reconcile(item)
                except ApiError as exc:  # e.g. an injected fault: retry on next change
                    log.debug("control plane: %s failed: %s", item, exc.message)
                except Exception:
                    log.exception("control plane: %s failed", item)

    def _reconcile(self, item: Item) -> None:
        if item[0] == "pvc":
            self._sync_claim(item[1], item[2])
        elif item[0] == "pv":
            self._sync_volume(item[1])
        elif item[0] == "ns":
            self._sync_namespace(item[1])
        elif item[0] == "classes":
            _, entries = self._store.snapshot("persistentvolumeclaims")
            for entry in entries:
                if not (entry.obj.get("spec") or {}).get("volumeName"):
                    meta = entry.obj["metadata"]
                    self._sync_claim(meta["namespace"], meta["name"])

    # -- claims ------------------------------------------------------------------

    def _sync_claim(self, namespace: str, name: str) -> None:
        claim = self._store.get("persistentvolumeclaims", namespace, name)
        if claim is None:
            for pv_name in sorted(self._pv_by_claim.get((namespace, name), ())):
                self._sync_volume(pv_name)
            return
        meta, spec = claim["metadata"], claim.get("spec") or {}
        if meta.get("deletionTimestamp"):
            if PVC_PROTECTION in (meta.get("finalizers") or []) and not self._in_use(claim):
                self._registry.mutate(_PVC, namespace, name, _drop_finalizer(PVC_PROTECTION))
            return
        volume_name = spec.get("volumeName")
        if volume_name:
            pv = self._store.get("persistentvolumes", "", volume_name)
            if pv is None:
                if (claim.get("status") or {}).get("phase") == "Bound":
                    self._set_claim_phase(claim, "Lost")
                    self._event(
                        claim,
                        "Warning",
                        "ClaimLost",
                        "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
                    )
                return
            ref = (pv.get("spec") or {}).get("claimRef")
            if ref is None or _ref_matches(ref, claim):
                self._bind(pv, claim)
            return
        for pv_name in sorted(self._pv_by_claim.get((namespace, name), ())):
            pv = self._store.get("persistentvolumes", "", pv_name)
            if pv is not None and _ref_matches(pv["spec"]["claimRef"], claim):
                self._bind(pv, claim)
                return
        self._provisioning(claim)

    def _provisioning(self, claim: Obj) -> None:
        meta, spec = claim["metadata"], claim.get("spec") or {}
        class_name = spec.get("storageClassName") or _ann(claim).get(BETA_CLASS_ANNOTATION)
        if not class_name:
            return
        sc = self._store.get("storageclasses", "", class_name)
        if sc is None or sc.get("provisioner") in (None, NO_PROVISIONER):
            return
        provisioner = sc["provisioner"]
        if sc.get("volumeBindingMode") == "WaitForFirstConsumer" and not _ann(claim).get(
            SELECTED_NODE
        ):
            self._event_once(
                claim,
                "Normal",
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            )
            return
        if all(_ann(claim).get(a) == provisioner for a in PROVISIONER_ANNOTATIONS):
            return

        def annotate(obj: Obj) -> None:
            annotations = obj["metadata"].setdefault("annotations", {})
            for key in PROVISIONER_ANNOTATIONS:
                annotations[key] = provisioner

        updated = self._registry.mutate(_PVC, meta["namespace"], meta["name"], annotate)
        if updated is not None:
            self._event(
                updated,
                "Normal",
                "ExternalProvisioning",
                EXTERNAL_PROVISIONING_MESSAGE.format(provisioner),
            )

    def _in_use(self, claim: Obj) -> bool:
        meta = claim["metadata"]
        _, pods = self._store.snapshot("pods", meta["namespace"])
        for pod in pods:
            if (pod.obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            for volume in (pod.obj.get("spec") or {}).get("volumes") or []:
                if (volume.get("persistentVolumeClaim") or {}).get("claimName") == meta["name"]:
                    return True
        return False

    def _set_claim_phase(self, claim: Obj, phase: str) -> None:
        def change(obj: Obj) -> None:
            obj["status"] = {**(obj.get("status") or {}), "phase": phase}

        meta = claim["metadata"]
        self._registry.mutate(_PVC, meta["namespace"], meta["name"], change)

    # -- binding -----------------------------------------------------------------

    def _bind(self, pv: Obj, claim: Obj) -> None:
        cmeta = claim["metadata"]
        pv_name = pv["metadata"]["name"]

        def volume_side(obj: Obj) -> None:
            spec = obj["spec"]
            ref = spec.get("claimRef")
            if not ref:
                spec["claimRef"] = {}
                obj["metadata"].setdefault("annotations", {})[BOUND_BY_CONTROLLER] = "yes"
            spec["claimRef"].update(
                kind="PersistentVolumeClaim",
                apiVersion="v1",
                namespace=cmeta["namespace"],
                name=cmeta["name"],
                uid=cmeta["uid"],
            )
            spec["claimRef"].setdefault("resourceVersion", cmeta["resourceVersion"])
            obj["status"] = {"phase": "Bound"}

        bound = self._registry.mutate(_PV, "", pv_name, volume_side)
        if bound is None:
            return

        def claim_side(obj: Obj) -> None:
            annotations = obj["metadata"].setdefault("annotations", {})
            if not obj["spec"].get("volumeName"):
                obj["spec"]["volumeName"] = pv_name
                annotations[BOUND_BY_CONTROLLER] = "yes"
            annotations[BIND_COMPLETED] = "yes"
            status = dict(obj.get("status") or {})
            status.update(
                phase="Bound",
                accessModes=bound["spec"].get("accessModes", []),
                capacity=bound["spec"].get("capacity", {}),
            )
            obj["status"] = status

        self._registry.mutate(_PVC, cmeta["namespace"], cmeta["name"], claim_side)

    # -- volumes -----------------------------------------------------------------

    def _sync_volume(self, name: str) -> None:
        pv = self._store.get("persistentvolumes", "", name)
        if pv is None:
            return
        meta, spec = pv["metadata"], pv.get("spec") or {}
        phase = (pv.get("status") or {}).get("phase")
        protected = PV_PROTECTION in (meta.get("finalizers") or [])
        if meta.get("deletionTimestamp") and protected and phase != "Bound":
            self._registry.mutate(_PV, "", name, _drop_finalizer(PV_PROTECTION))
            return
        ref = spec.get("claimRef")
        if not ref:
            self._set_volume_phase(name, "Available")
            return
        claim = self._store.get(
            "persistentvolumeclaims", ref.get("namespace", ""), ref.get("name", "")
        )
        if claim is None or (ref.get("uid") and ref["uid"] != claim["metadata"]["uid"]):
            self._set_volume_phase(name, "Released" if ref.get("uid") else "Available")
            return
        if (claim.get("spec") or {}).get("volumeName") in (None, "", name):
            if phase != "Released":
                self._sync_claim(ref["namespace"], ref["name"])
            return

        # The claim is bound to another volume: undo a binding the controller made.
        def unbind(obj: Obj) -> None:
            if _ann(obj).get(BOUND_BY_CONTROLLER) == "yes":
                obj["spec"].pop("claimRef", None)
                obj["metadata"]["annotations"].pop(BOUND_BY_CONTROLLER, None)
            obj["status"] = {"phase": "Available"}

        self._registry.mutate(_PV, "", name, unbind)

    def _set_volume_phase(self, name: str, phase: str) -> None:
        def change(obj: Obj) -> None:
            if (obj.get("status") or {}).get("phase") not in (phase, "Failed"):
                obj["status"] = {"phase": phase}

        self._registry.mutate(_PV, "", name, change)

    # -- namespaces ----------------------------------------------------------------

    def _sync_namespace(self, name: str) -> None:
        ns = self._store.get("namespaces", "", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        remaining = 0
        for storage in _NAMESPACED_STORAGE:
            rt = lookup("", "v1", storage) or next(r for r in RESOURCES if r.plural == storage)
            _, entries = self._store.snapshot(storage, name)
            for entry in entries:
                remaining += 1
                if not entry.obj["metadata"].get("deletionTimestamp"):
                    try:
                        self._registry.delete(rt, name, entry.obj["metadata"]["name"])
                    except ApiError as exc:
                        if exc.code != 404:
                            raise
        if remaining == 0 or all(self._store.count(s, name) == 0 for s in _NAMESPACED_STORAGE):
            self._store.remove("namespaces", "", name)

    # -- events ------------------------------------------------------------------

    def _event_once(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        key = (obj["metadata"]["uid"], reason)
        if key not in self._announced:
            self._announced.add(key)
            self._event(obj, type_, reason, message)

    def _event(self, obj: Obj, type_: str, reason: str, message: str) -> None:
        meta = obj["metadata"]
        stamp = now()
        body = {
            "metadata": {
                "name": f"{meta['name']}.{secrets.token_hex(8)}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "kind": obj["kind"],
                "apiVersion": obj["apiVersion"],
                "namespace": meta["namespace"],
                "name": meta["name"],
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": COMPONENT},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "reportingComponent": COMPONENT,
            "reportingInstance": "",
        }
        self._registry.create(_EVENTS, meta["namespace"], body)


def _ref_matches(ref: Obj, claim: Obj) -> bool:
    meta = claim["metadata"]
    return (
        ref.get("namespace") == meta["namespace"]
        and ref.get("name") == meta["name"]
        and ref.get("uid") in (None, "", meta["uid"])
    )


def _drop_finalizer(finalizer: str) -> Any:
    def change(obj: Obj) -> None:
        obj["metadata"]["finalizers"] = [
            f for f in obj["metadata"].get("finalizers") or [] if f != finalizer
        ]

    return change

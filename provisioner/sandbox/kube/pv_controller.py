"""The PV controller's binder, as kube-controller-manager runs it (the parts we need).

- A claim whose class has an external provisioner (not ``kubernetes.io/no-provisioner``)
  gets the ``volume.kubernetes.io/storage-provisioner`` annotations (and the beta one)
  and a Normal ExternalProvisioning event; for WaitForFirstConsumer only once the
  scheduler (``KubeSandbox.select_node``) has set ``volume.kubernetes.io/selected-node``.
- A volume whose ``spec.claimRef`` names a claim (uid matching, or unset) is bound to it;
  a claim naming a volume in ``spec.volumeName`` is bound to it; otherwise an Available
  volume of the same class, access modes and volume mode, big enough and matching the
  claim's selector, is chosen (smallest first) for Immediate classes.
- A volume whose claim is gone (or whose claimRef uid is an older claim's) is Released,
  and stays so: Retain waits for an admin, Delete for the external provisioner.
- Protection finalizers are removed once the object is being deleted and is not in use.
- On 1.31 and later (HonorPVReclaimPolicy) a dynamically provisioned Delete volume of a
  ``kubernetes.io/*`` plugin that is not CSI-migrated carries ``kubernetes.io/pv-controller``
  (put back whenever it is removed before the volume's DELETE; it cannot be added once
  the volume is being deleted) and loses ``external-provisioner.volume.kubernetes.io/
  finalizer``; a Retain or Recycle one loses ``kubernetes.io/pv-controller``.
- On 1.26 and later the in-tree glusterfs plugin is gone, as in the real controller:
  a claim of a ``kubernetes.io/glusterfs`` class gets a Warning ProvisioningFailed
  event ("no volume plugin matched") and never the storage-provisioner annotation,
  and a Released Delete volume provisioned by ``kubernetes.io/glusterfs`` goes to
  phase Failed (Warning VolumeFailedDelete), since no plugin can delete it.

Every method reads the current state and converges; writes go through the registry.
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from .admission import BETA_CLASS_ANNOTATION, PV_PROTECTION, PVC_PROTECTION
from .deprecations import release as _release
from .matching import fitting_size
from .registry import Registry
from .resources import by_plural
from .store import Event, now

Obj = dict[str, Any]
Item = tuple[str, ...]

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

_PVC = by_plural("persistentvolumeclaims")
_PV = by_plural("persistentvolumes")
_EVENTS = by_plural("events")  # core/v1, which the real controller still writes


REMOVED_PLUGINS = {"kubernetes.io/glusterfs": (1, 26)}  # plugin name -> first release without
PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
# HonorPVReclaimPolicy (GA in 1.31): the PV controller keeps its own finalizer on every
# dynamically provisioned Delete volume of a kubernetes.io/* plugin that is not
# CSI-migrated, and takes the external provisioner's off it.
IN_TREE_FINALIZER = "kubernetes.io/pv-controller"
EXTERNAL_FINALIZER = "external-provisioner.volume.kubernetes.io/finalizer"
IN_TREE_FINALIZER_SINCE = (1, 31)
CSI_MIGRATED = frozenset(
    "kubernetes.io/" + p
    for p in (
        "aws-ebs",
        "gce-pd",
        "azure-file",
        "azure-disk",
        "cinder",
        "vsphere-volume",
        "portworx-volume",
    )
)


def _ann(obj: Obj) -> dict[str, str]:
    return obj["metadata"].get("annotations") or {}


class PVController:
    def __init__(self, registry: Registry, *, version: str = "1.25.0") -> None:
        self._registry = registry
        self._release = _release(version)
        self._store = registry.store
        # Indexes kept from store events (under the store lock), so that syncing one
        # claim never scans every volume.
        self._pv_by_claim: dict[tuple[str, str], set[str]] = {}
        self._unclaimed: set[str] = set()
        self._announced: set[tuple[str, str]] = set()

    def observe(self, storage: str, event: Event) -> list[Item]:
        """Update the indexes for one change; returns what needs a sync."""
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
            if ref or event.type == "DELETED" or meta.get("deletionTimestamp"):
                self._unclaimed.discard(name)
            else:
                self._unclaimed.add(name)
                items.append(("unbound",))
            items.append(("pv", name))
        elif storage == "storageclasses":
            items.append(("unbound",))
        elif storage == "pods":
            for volume in (obj.get("spec") or {}).get("volumes") or []:
                claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
                if claim:
                    items.append(("pvc", meta["namespace"], claim))
        return items

    # The indexes change under the store lock (in ``observe``); read them under it too.

    def _volumes_claiming(self, namespace: str, name: str) -> list[str]:
        with self._store.lock:
            return sorted(self._pv_by_claim.get((namespace, name), ()))

    def _unclaimed_volumes(self) -> list[str]:
        with self._store.lock:
            return sorted(self._unclaimed)

    def sync_unbound_claims(self) -> None:
        _, entries = self._store.snapshot("persistentvolumeclaims")
        for entry in entries:
            if not (entry.obj.get("spec") or {}).get("volumeName"):
                meta = entry.obj["metadata"]
                self.sync_claim(meta["namespace"], meta["name"])

    # -- claims ------------------------------------------------------------------

    def sync_claim(self, namespace: str, name: str) -> None:
        claim = self._store.get("persistentvolumeclaims", namespace, name)
        if claim is None:
            for pv_name in self._volumes_claiming(namespace, name):
                self.sync_volume(pv_name)
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
        for pv_name in self._volumes_claiming(namespace, name):
            pv = self._store.get("persistentvolumes", "", pv_name)
            if pv is not None and _ref_matches(pv["spec"]["claimRef"], claim):
                self._bind(pv, claim)
                return
        static = self._find_available(claim)
        if static is not None:
            self._bind(static, claim)
            return
        self._provisioning(claim)

    def _find_available(self, claim: Obj) -> Obj | None:
        """The smallest Available, unclaimed volume that satisfies the claim, if any."""
        spec = claim.get("spec") or {}
        class_name = spec.get("storageClassName")
        if class_name is None:
            class_name = _ann(claim).get(BETA_CLASS_ANNOTATION, "")
        if class_name:
            sc = self._store.get("storageclasses", "", class_name)
            wait = sc is not None and sc.get("volumeBindingMode") == "WaitForFirstConsumer"
            if wait and not _ann(claim).get(SELECTED_NODE):
                return None
        best: tuple[Decimal, str, Obj] | None = None
        for name in self._unclaimed_volumes():
            pv = self._store.get("persistentvolumes", "", name)
            size = None if pv is None else fitting_size(pv, spec, class_name or "")
            if pv is not None and size is not None and (best is None or size < best[0]):
                best = (size, name, pv)
        return None if best is None else best[2]

    def _provisioning(self, claim: Obj) -> None:
        meta, spec = claim["metadata"], claim.get("spec") or {}
        class_name = spec.get("storageClassName") or _ann(claim).get(BETA_CLASS_ANNOTATION)
        if not class_name:
            return
        sc = self._store.get("storageclasses", "", class_name)
        if sc is None:
            message = f'storageclass.storage.k8s.io "{class_name}" not found'
            self._event_once(claim, "Warning", "ProvisioningFailed", message)
            return
        if sc.get("provisioner") in (None, NO_PROVISIONER):
            return
        provisioner = sc["provisioner"]
        if self._plugin_removed(provisioner):
            message = f"no volume plugin matched name: {provisioner}"
            self._event_once(claim, "Warning", "ProvisioningFailed", message)
            return
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

    def sync_volume(self, name: str) -> None:
        pv = self._store.get("persistentvolumes", "", name)
        if pv is None:
            return
        if self._release >= IN_TREE_FINALIZER_SINCE:
            finalizers = in_tree_finalizers(pv)
            if finalizers is not None:
                pv = self._registry.mutate(_PV, "", name, _set_finalizers(finalizers)) or pv
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
            if not ref.get("uid"):
                self._set_volume_phase(name, "Available")
            elif self._undeletable(pv):
                self._set_volume_phase(name, "Failed")
                self._event_once(
                    pv,
                    "Warning",
                    "VolumeFailedDelete",
                    f'error getting deleter volume plugin for volume "{name}": no deletable '
                    "volume plugin matched",
                )
            else:
                self._set_volume_phase(name, "Released")
            return
        if (claim.get("spec") or {}).get("volumeName") in (None, "", name):
            if phase != "Released":
                self.sync_claim(ref["namespace"], ref["name"])
            return

        # The claim is bound to another volume: undo a binding the controller made.
        def unbind(obj: Obj) -> None:
            if _ann(obj).get(BOUND_BY_CONTROLLER) == "yes":
                obj["spec"].pop("claimRef", None)
                obj["metadata"]["annotations"].pop(BOUND_BY_CONTROLLER, None)
            obj["status"] = {"phase": "Available"}

        self._registry.mutate(_PV, "", name, unbind)

    def _plugin_removed(self, provisioner: str) -> bool:
        gone_in = REMOVED_PLUGINS.get(provisioner)
        return gone_in is not None and self._release >= gone_in

    def _undeletable(self, pv: Obj) -> bool:
        """A released Delete volume of a removed in-tree plugin: nothing can delete it."""
        reclaim = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Delete"
        return reclaim == "Delete" and self._plugin_removed(_ann(pv).get(PROVISIONED_BY, ""))

    def _set_volume_phase(self, name: str, phase: str) -> None:
        def change(obj: Obj) -> None:
            if (obj.get("status") or {}).get("phase") not in (phase, "Failed"):
                obj["status"] = {"phase": phase}

        self._registry.mutate(_PV, "", name, change)

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


def in_tree_finalizers(pv: Obj) -> list[str] | None:
    """The finalizers the 1.31+ PV controller wants on ``pv``, or None to leave them."""
    provisioner = _ann(pv).get(PROVISIONED_BY)
    if provisioner is None:
        return None  # only dynamically provisioned volumes
    current = list(pv["metadata"].get("finalizers") or [])
    wanted = list(current)
    if provisioner in CSI_MIGRATED:
        wanted = [f for f in wanted if f != IN_TREE_FINALIZER]
    elif provisioner.startswith("kubernetes.io/"):
        reclaim = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy")
        if reclaim == "Delete" and IN_TREE_FINALIZER not in wanted:
            if not pv["metadata"].get("deletionTimestamp"):  # the server refuses it then
                wanted.append(IN_TREE_FINALIZER)
        elif reclaim in ("Retain", "Recycle"):
            wanted = [f for f in wanted if f != IN_TREE_FINALIZER]
        wanted = [f for f in wanted if f != EXTERNAL_FINALIZER]
    return None if wanted == current else wanted


def _set_finalizers(finalizers: list[str]) -> Any:
    def change(obj: Obj) -> None:
        if finalizers:
            obj["metadata"]["finalizers"] = finalizers
        else:
            obj["metadata"].pop("finalizers", None)

    return change


def _drop_finalizer(finalizer: str) -> Any:
    def change(obj: Obj) -> None:
        obj["metadata"]["finalizers"] = [
            f for f in obj["metadata"].get("finalizers") or [] if f != finalizer
        ]

    return change

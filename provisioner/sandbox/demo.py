"""``heketi-provisioner sandbox --demo``: a scripted walk-through that checks itself.

It provisions and deletes a glusterfs volume, then the two kinds that kubelets of
1.26 and later mount: an NFS volume (``pvtype: nfs``) and a gluster-block volume as
an iSCSI PV with its CHAP Secret. Each step prints what it does and what it saw;
the first step that does not hold ends the demo with a non-zero status naming that
step.  Everything goes through
the Kubernetes API over HTTP, as ``kubectl`` would, and the Heketi side is checked
by asking the simulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TextIO, TypeVar

from provisioner.gluster.annotations import ANN_GID, ANN_HEKETI_VOLUME_ID
from provisioner.gluster.credentials import heketi_secret_body
from provisioner.k8s.errors import KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI
from provisioner.sandbox import waiting
from provisioner.sandbox.stack import SandboxStack

T = TypeVar("T")

NAMESPACE = "default"
SECRET = "heketi-admin"
CLASS = "gluster-demo"
CLAIM = "demo-claim"
NFS_CLASS = "gluster-nfs-demo"
NFS_CLAIM = "demo-nfs-claim"
NFS_SERVER = "nfs-vip.gluster.local"
BLOCK_CLASS = "gluster-block-demo"
BLOCK_CLAIM = "demo-block-claim"


class StepFailed(Exception):
    pass


def wait_for(probe: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll ``probe`` until it returns something truthy; StepFailed after ``timeout``."""
    return waiting.wait_for(probe, timeout, what, interval=0.1, error=StepFailed)


def _get(kube: KubeAPI, resource: str, name: str, namespace: str | None = None) -> Any:
    try:
        return kube.get(resource, name, namespace)
    except KubeNotFound:
        return None


class Demo:
    def __init__(self, stack: SandboxStack, kube: KubeAPI, out: TextIO, timeout: float) -> None:
        self.stack = stack
        self.kube = kube
        self.out = out
        self.timeout = timeout
        self.step = 0

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def begin(self, text: str) -> None:
        self.step += 1
        self.say(f"[{self.step}] {text}")

    def run(self) -> None:
        provisioner_name = self.stack.options.settings.provisioner_name
        self.begin("create the Heketi admin Secret (type kubernetes.io/glusterfs)")
        self.kube.create(
            "secrets", heketi_secret_body(SECRET, NAMESPACE, self.stack.admin_key), NAMESPACE
        )
        self.begin(f"create StorageClass {CLASS} (provisioner {provisioner_name})")
        self.kube.create(
            "storageclasses",
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": CLASS},
                "provisioner": provisioner_name,
                "reclaimPolicy": "Delete",
                "parameters": {
                    "resturl": self.stack.heketi_url,
                    "restuser": "admin",
                    "secretNamespace": NAMESPACE,
                    "secretName": SECRET,
                    "volumetype": "replicate:3",
                },
            },
        )
        self.begin(f"create claim {NAMESPACE}/{CLAIM} (1Gi, ReadWriteMany)")
        started = time.monotonic()
        self.kube.create(
            "persistentvolumeclaims",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": CLAIM, "namespace": NAMESPACE},
                "spec": {
                    "storageClassName": CLASS,
                    "accessModes": ["ReadWriteMany"],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
            NAMESPACE,
        )
        self.begin("wait until the claim is Bound")
        claim = wait_for(
            lambda: self._claim_if_bound(),
            timeout=self.timeout,
            what="the claim to be Bound",
        )
        self.say(f"    Bound after {time.monotonic() - started:.2f}s")
        self.begin("show the PersistentVolume")
        pv_name = claim["spec"]["volumeName"]
        pv = self.kube.get("persistentvolumes", pv_name)
        volume_id = self._show_pv(pv)
        if not any(v.get("id") == volume_id for v in self.stack.heketi.volumes()):
            raise StepFailed(f"Heketi has no volume {volume_id}")
        self.begin("delete the claim")
        self.kube.delete("persistentvolumeclaims", CLAIM, NAMESPACE)
        self.begin("wait until the PersistentVolume is gone")
        wait_for(
            lambda: _get(self.kube, "persistentvolumes", pv_name) is None,
            timeout=self.timeout,
            what=f"PersistentVolume {pv_name} to be deleted",
        )
        self.begin("check the Heketi volume is gone")
        wait_for(
            lambda: all(v.get("id") != volume_id for v in self.stack.heketi.volumes()),
            timeout=self.timeout,
            what=f"Heketi volume {volume_id} to be deleted",
        )
        self.say(f"    Heketi volume {volume_id} deleted")
        self.run_nfs()
        self.run_block()

    # -- the kinds current kubelets mount (docs/kubernetes-1.26-and-later.md) --------

    def _class(self, name: str, provisioner: str, parameters: dict[str, str]) -> None:
        self.kube.create(
            "storageclasses",
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": name},
                "provisioner": provisioner,
                "reclaimPolicy": "Delete",
                "parameters": {"resturl": self.stack.heketi_url, "restuser": "admin", **parameters},
            },
        )

    def _bound_claim(self, name: str, storage_class: str, mode: str) -> dict[str, Any]:
        self.begin(f"create claim {NAMESPACE}/{name} (1Gi, {mode}) and wait until Bound")
        self.kube.create(
            "persistentvolumeclaims",
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {
                    "storageClassName": storage_class,
                    "accessModes": [mode],
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
            NAMESPACE,
        )
        claim = wait_for(
            lambda: self._claim_if_bound(name), timeout=self.timeout, what=f"{name} to be Bound"
        )
        pv: dict[str, Any] = self.kube.get("persistentvolumes", claim["spec"]["volumeName"])
        return pv

    def _delete_claim(self, name: str, pv_name: str) -> None:
        self.begin(f"delete claim {name} and wait until its PersistentVolume is gone")
        self.kube.delete("persistentvolumeclaims", name, NAMESPACE)
        wait_for(
            lambda: _get(self.kube, "persistentvolumes", pv_name) is None,
            timeout=self.timeout,
            what=f"PersistentVolume {pv_name} to be deleted",
        )

    def run_nfs(self) -> None:
        self.begin(f"create StorageClass {NFS_CLASS} (pvtype: nfs, nfsserver: {NFS_SERVER})")
        self._class(
            NFS_CLASS,
            self.stack.options.settings.provisioner_name,
            {"secretNamespace": NAMESPACE, "secretName": SECRET, "pvtype": "nfs",
             "nfsserver": NFS_SERVER},
        )  # fmt: skip
        pv = self._bound_claim(NFS_CLAIM, NFS_CLASS, "ReadWriteMany")
        nfs = (pv.get("spec") or {}).get("nfs") or {}
        self.say(f"    nfs        server {nfs.get('server')} path {nfs.get('path')}")
        if nfs.get("server") != NFS_SERVER or not str(nfs.get("path", "")).startswith("/"):
            raise StepFailed("the PV has no spec.nfs with the class's server")
        self._delete_claim(NFS_CLAIM, pv["metadata"]["name"])

    def run_block(self) -> None:
        block_name = self.stack.options.settings.block_provisioner_name
        if not block_name:
            self.say("    (block volumes are off: --block-provisioner-name is empty)")
            return
        self.begin(f"create StorageClass {BLOCK_CLASS} (provisioner {block_name}, CHAP on)")
        self._class(
            BLOCK_CLASS, block_name,
            {"restsecretnamespace": NAMESPACE, "restsecretname": SECRET, "hacount": "3"},
        )  # fmt: skip
        pv = self._bound_claim(BLOCK_CLAIM, BLOCK_CLASS, "ReadWriteOnce")
        iscsi = (pv.get("spec") or {}).get("iscsi") or {}
        ref = iscsi.get("secretRef") or {}
        self.say(f"    portal     {iscsi.get('targetPortal')} + {iscsi.get('portals')}")
        self.say(f"    iqn        {iscsi.get('iqn')} lun {iscsi.get('lun')}")
        self.say(f"    chap       Secret {ref.get('namespace')}/{ref.get('name')}")
        secret = _get(self.kube, "secrets", str(ref.get("name")), ref.get("namespace"))
        if not iscsi.get("targetPortal") or secret is None:
            raise StepFailed("the PV has no iSCSI target or its CHAP Secret is missing")
        self._delete_claim(BLOCK_CLAIM, pv["metadata"]["name"])
        self.begin("check the block volume and the CHAP Secret are gone")
        wait_for(
            lambda: (
                not self.stack.heketi.block_volumes()
                and _get(self.kube, "secrets", str(ref.get("name")), ref.get("namespace")) is None
            ),
            timeout=self.timeout,
            what="the block volume and its CHAP Secret to be deleted",
        )

    def _claim_if_bound(self, name: str = CLAIM) -> Any:
        claim = _get(self.kube, "persistentvolumeclaims", name, NAMESPACE)
        if claim and (claim.get("status") or {}).get("phase") == "Bound":
            return claim
        return None

    def _show_pv(self, pv: dict[str, Any]) -> str:
        spec = pv.get("spec") or {}
        annotations = (pv.get("metadata") or {}).get("annotations") or {}
        source = spec.get("glusterfs") or {}
        volume_id = annotations.get(ANN_HEKETI_VOLUME_ID, "")
        endpoints = _get(
            self.kube, "endpoints", str(source.get("endpoints")), source.get("endpointsNamespace")
        )
        addresses = [
            a.get("ip")
            for subset in (endpoints or {}).get("subsets") or []
            for a in subset.get("addresses") or []
        ]
        self.say(f"    name       {pv['metadata']['name']}")
        self.say(f"    capacity   {(spec.get('capacity') or {}).get('storage')}")
        self.say(f"    path       {source.get('path')}")
        self.say(f"    gid        {annotations.get(ANN_GID)}")
        self.say(f"    endpoints  {source.get('endpoints')} {addresses}")
        self.say(f"    heketi id  {volume_id}")
        if not addresses:
            raise StepFailed("the PV's Endpoints object has no addresses")
        return str(volume_id)


def run_demo(stack: SandboxStack, out: TextIO, *, timeout: float = 60.0) -> int:
    """0 if every step held; 1 with the failing step printed otherwise."""
    assert stack.kube_api is not None, "the demo needs the controller running"
    demo = Demo(stack, stack.kube_api, out, timeout)
    try:
        demo.run()
    except Exception as exc:
        demo.say(f"FAILED at step {demo.step}: {exc}")
        return 1
    demo.say("demo completed: every step held")
    return 0

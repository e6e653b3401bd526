"""The test bed and the objects the benchmarks put in it.

Bodies for pre-loaded bound claims are built with the controller's own builders
(``provisioner.objects``), so the controller sees at start exactly what it would
have written itself: a PV with our annotations and finalizer, its Endpoints and
Service, and a claim the binder has bound to it.
"""

from __future__ import annotations

import gc
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.config import DEFAULT_BLOCK_PROVISIONER_NAME, DEFAULT_PROVISIONER_NAME
from provisioner.gluster.credentials import heketi_secret_body
from provisioner.gluster.objects import (
    build_endpoints,
    build_pv,
    build_service,
    endpoints_name,
    heketi_volume_name,
)
from provisioner.gluster.parameters import parse_class_parameters
from provisioner.sandbox.heketi import HeketiSimulator
from provisioner.sandbox.kube import KubeSandbox
from provisioner.sandbox.kube.resources import by_plural

Obj = dict[str, Any]

NAMESPACE = "default"
SECRET = "heketi-admin"
CLASS = "gluster-bench"
ADMIN_KEY = "bench-admin-key-0123456789abcdef"
KUBE_VERSION = "1.25.16"  # below 1.26: the version gate lets the controller provision
VOLUMES_PER_CLUSTER = 900  # Heketi refuses more than 1000 volumes in one cluster


@dataclass
class Servers:
    heketi: HeketiSimulator
    kube: KubeSandbox

    def stop(self) -> None:
        self.kube.stop()
        self.heketi.stop()


def start_test_bed(
    workdir: Path, *, volumes: int, latency: float, max_inflight: int, kind: str = "file"
) -> Servers:
    """Heketi with room for ``volumes`` 1 GiB replica-3 volumes, and the API sandbox.
    ``kind``: the class claims use (``file``, ``nfs``: ``pvtype: nfs``, ``block``:
    gluster-block through ``gluster.org/glusterblock``)."""
    heketi = HeketiSimulator(
        admin_key=ADMIN_KEY,
        clusters=max(1, math.ceil(volumes / VOLUMES_PER_CLUSTER)),
        nodes=3,
        devices_per_node=2,
        device_size_gb=2000,
        latency=latency,
        max_inflight=max_inflight,
        seed=1,
    )
    heketi.start()
    kube = KubeSandbox(version=KUBE_VERSION, kubeconfig_path=workdir / "kubeconfig")
    kube.start()
    bed = Servers(heketi, kube)
    kube.create_object("secrets", secret_body(), NAMESPACE)
    kube.create_object("storageclasses", class_body(heketi.url, kind))
    return bed


def secret_body() -> Obj:
    return heketi_secret_body(SECRET, NAMESPACE, ADMIN_KEY)


KINDS = ("file", "nfs", "block")


def class_body(heketi_url: str, kind: str = "file") -> Obj:
    parameters = {
        "resturl": heketi_url,
        "restuser": "admin",
        "secretNamespace": NAMESPACE,
        "secretName": SECRET,
        "volumetype": "replicate:3",
    }
    provisioner = DEFAULT_PROVISIONER_NAME
    if kind == "nfs":
        parameters.update(pvtype="nfs", nfsserver="nfs-vip.bench.local")
    elif kind == "block":
        provisioner = DEFAULT_BLOCK_PROVISIONER_NAME
        parameters = {
            "resturl": heketi_url,
            "restuser": "admin",
            "restsecretnamespace": NAMESPACE,
            "restsecretname": SECRET,
            "hacount": "3",
        }
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": CLASS},
        "provisioner": provisioner,
        "reclaimPolicy": "Delete",
        "parameters": parameters,
    }


def claim_body(name: str, kind: str = "file") -> Obj:
    mode = "ReadWriteOnce" if kind == "block" else "ReadWriteMany"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "storageClassName": CLASS,
            "accessModes": [mode],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }


@dataclass
class BoundSet:
    claims: list[Obj]
    volumes: list[Obj]
    endpoints: list[Obj]
    services: list[Obj]


def bound_claims(count: int, heketi_url: str, hosts: list[str]) -> BoundSet:
    """``count`` claims already provisioned by us and bound, with everything around them."""
    storage_class = class_body(heketi_url)
    params = parse_class_parameters(storage_class["parameters"])
    out = BoundSet([], [], [], [])
    for i, claim in enumerate(_claims(count)):
        uid = claim["metadata"]["uid"]
        companions = endpoints_name(params.endpoints_prefix, uid)
        pv = build_pv(
            claim=claim,
            storage_class=storage_class,
            params=params,
            provisioner_name=DEFAULT_PROVISIONER_NAME,
            volume_id=os.urandom(16).hex(),
            volume_name=heketi_volume_name(params, claim),
            size_gib=1,
            gid=2000 + i,
            endpoints_name=companions,
            resturl=heketi_url,
            secret_namespace=NAMESPACE,
            secret_name=SECRET,
            rest_user="admin",
        )
        pv["status"] = {"phase": "Bound"}
        claim["spec"]["volumeName"] = pv["metadata"]["name"]
        out.claims.append(claim)
        out.volumes.append(pv)
        out.endpoints.append(
            build_endpoints(
                name=companions,
                namespace=NAMESPACE,
                claim_name=claim["metadata"]["name"],
                hosts=hosts,
            )
        )
        out.services.append(
            build_service(
                name=companions, namespace=NAMESPACE, claim_name=claim["metadata"]["name"]
            )
        )
    return out


def _claims(count: int) -> Iterator[Obj]:
    for i in range(count):
        claim = claim_body(f"bound-{i:05d}")
        claim["metadata"]["uid"] = _uuid()
        claim["metadata"]["annotations"] = {
            "pv.kubernetes.io/bind-completed": "yes",
            "pv.kubernetes.io/bound-by-controller": "yes",
            "volume.kubernetes.io/storage-provisioner": DEFAULT_PROVISIONER_NAME,
            "volume.beta.kubernetes.io/storage-provisioner": DEFAULT_PROVISIONER_NAME,
        }
        claim["metadata"]["finalizers"] = ["kubernetes.io/pvc-protection"]
        claim["status"] = {
            "phase": "Bound",
            "accessModes": ["ReadWriteMany"],
            "capacity": {"storage": "1Gi"},
        }
        yield claim


def _uuid() -> str:
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def preload_bound(bed: Servers, count: int) -> BoundSet:
    """Insert ``count`` bound claims of ours, in bulk, without watch events."""
    hosts = [f"10.0.1.{n}" for n in (1, 2, 3)]
    bound = bound_claims(count, bed.heketi.url, hosts)
    bed.kube.preload("persistentvolumes", bound.volumes)
    bed.kube.preload("persistentvolumeclaims", bound.claims)
    bed.kube.preload("endpoints", bound.endpoints)
    bed.kube.preload("services", bound.services)
    # The test bed's store now holds 4 x count objects for the rest of the run: keep
    # the cyclic collector of this process (which serves the controller's lists)
    # from walking them on every allocation burst; at 50,000 that slowed each list.
    gc.collect()
    gc.freeze()
    return bound


class BoundWatch:
    """When each claim became Bound, seen on the sandbox's own change feed (no HTTP)."""

    def __init__(self, kube: Any) -> None:
        self.storage = by_plural("persistentvolumeclaims").storage_key
        self.bound: dict[str, float] = {}
        self._lock = threading.Lock()
        kube.store.add_listener(self._on_change)

    def _on_change(self, storage: str, event: Any) -> None:
        if storage != self.storage:
            return
        obj = event.entry.obj
        if (obj.get("status") or {}).get("phase") == "Bound":
            name = obj["metadata"]["name"]
            with self._lock:
                self.bound.setdefault(name, time.monotonic())

    def count(self) -> int:
        with self._lock:
            return len(self.bound)

"""The in-tree ``kubernetes.io/glusterfs`` provisioner next to ours, on real peers.

kube-controller-manager 1.25 still carries the in-tree provisioner: the PV controller
("persistentvolume-binder") provisions every claim whose class names
``kubernetes.io/glusterfs``, in its own goroutine per claim, with Heketi's Go client.
No flag or feature gate of 1.25 unregisters that plugin (``plugins.go`` always calls
``glusterfs.ProbeVolumePlugins()``), so "in-tree off" means a 1.26+ controller
manager, or none.

The clusters and Heketis come from ``testbeds.peers`` (``start_kube`` with an audit
log and controller-manager flags, ``start_heketi`` with auth optional). What this
module adds:

- Object builders, waits (``wait_bound``, ``wait_gone``), and the normalisation that
  makes an in-tree PV / Endpoints / Service / event list / volume request comparable
  with ours (``normalise_*``), plus ``differences(a, b)``.

Storage addresses are from 192.0.2.0/24 (documentation range): a real API server
refuses loopback addresses in Endpoints, and nothing ever connects to these.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from testbeds.harness.controller import make_namespace
from testbeds.peers import (
    REPO,
    RealHeketi,
    RealKube,
    wait_for,
)

INTREE = "kubernetes.io/glusterfs"
OURS = "gluster.org/heketi"
STORAGE_IPS = ("192.0.2.11", "192.0.2.12", "192.0.2.13")

Obj = dict[str, Any]


def bench_module(name: str) -> Any:
    """A module of ``bench/`` (not a package), e.g. ``bench_module("delay_proxy")``."""
    key = f"_bench_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, REPO / "bench" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module  # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
    return sys.modules[key]


# -- Heketi ---------------------------------------------------------------------------


def heketi_volume_ids(heketi: RealHeketi) -> set[str]:
    return set(heketi.get("/volumes")["volumes"])


def heketi_volume(heketi: RealHeketi, volume_id: str) -> Obj:
    return heketi.get(f"/volumes/{volume_id}")  # type: ignore[no-any-return]


# -- objects --------------------------------------------------------------------------


def make_secret(
    kube: RealKube, namespace: str, name: str, data: Mapping[str, str], *, kind: str = INTREE
) -> None:
    make_namespace(kube, namespace)
    kube.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "type": kind,
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        },
        ok=(201, 409),
    )


def make_class(
    kube: RealKube,
    name: str,
    provisioner: str,
    parameters: Mapping[str, str],
    *,
    reclaim_policy: str = "Delete",
    mount_options: Sequence[str] = (),
) -> Obj:
    body: Obj = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": provisioner,
        "reclaimPolicy": reclaim_policy,
        "volumeBindingMode": "Immediate",
        "parameters": dict(parameters),
    }
    if mount_options:
        body["mountOptions"] = list(mount_options)
    return kube.create("/apis/storage.k8s.io/v1/storageclasses", body)  # type: ignore[no-any-return]


def claim_body(
    name: str,
    class_name: str,
    *,
    size: str = "1Gi",
    access_modes: Sequence[str] = ("ReadWriteOnce",),
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": list(access_modes),
            "storageClassName": class_name,
            "resources": {"requests": {"storage": size}},
        },
    }


def make_claim(kube: RealKube, namespace: str, name: str, class_name: str, **kw: Any) -> Obj:
    make_namespace(kube, namespace)
    return kube.create(  # type: ignore[no-any-return]
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        claim_body(name, class_name, **kw),
    )


def get_or_none(kube: RealKube, path: str) -> Obj | None:
    r = kube.session.get(kube.server + path, timeout=30)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return r.json()  # type: ignore[no-any-return]


def wait_bound(
    kube: RealKube, namespace: str, name: str, timeout: float = 60, check: Any = None
) -> tuple[Obj, Obj]:
    """The claim once Bound (with spec.volumeName), and its PV."""

    def bound() -> Obj | None:
        pvc = kube.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{name}")
        if pvc["status"].get("phase") == "Bound" and pvc["spec"].get("volumeName"):
            return pvc  # type: ignore[no-any-return]
        return None

    pvc = wait_for(bound, timeout, f"claim {namespace}/{name} Bound", check=check)
    pv = kube.get(f"/api/v1/persistentvolumes/{pvc['spec']['volumeName']}")
    return pvc, pv


def wait_gone(kube: RealKube, paths: Iterable[str], timeout: float = 60, check: Any = None) -> None:
    todo = list(paths)
    wait_for(
        lambda: all(get_or_none(kube, p) is None for p in todo),
        timeout,
        f"gone: {', '.join(todo)}",
        check=check,
    )


def claim_events(kube: RealKube, namespace: str, uid: str) -> list[Obj]:
    """Events about the claim with ``uid``, oldest first."""
    items = kube.get(
        f"/api/v1/namespaces/{namespace}/events?fieldSelector=involvedObject.uid%3D{uid}"
    )["items"]
    return sorted(items, key=lambda e: e.get("firstTimestamp") or e.get("eventTime") or "")


# -- normalisation --------------------------------------------------------------------

# Filled by the API server or the PV binder for whoever provisioned: not the
# provisioner's output.
_META_DROP = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "selfLink",
)


def _meta(obj: Obj, replace: Mapping[str, str]) -> Obj:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in _META_DROP}
    return _substitute(meta, replace)  # type: ignore[no-any-return]


def _substitute(value: Any, replace: Mapping[str, str]) -> Any:
    """Replace every occurrence of each key of ``replace`` (names, uids) inside strings."""
    if isinstance(value, str):
        for old, new in replace.items():
            if old:
                value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_substitute(v, replace) for v in value]
    if isinstance(value, dict):
        return {_substitute(k, replace): _substitute(v, replace) for k, v in value.items()}
    return value


def placeholders(claim: Obj, class_name: str, volume: Obj | None = None) -> dict[str, str]:
    """What differs by construction between the two runs: the claim's uid and name,
    the class name, the Heketi volume id."""
    out = {
        claim["metadata"]["uid"]: "<claim-uid>",
        class_name: "<class>",
    }
    if volume is not None:
        out[volume["id"]] = "<volume-id>"
    return out


def normalise_pv(pv: Obj, replace: Mapping[str, str]) -> Obj:
    spec = dict(pv["spec"])
    claim_ref = {k: v for k, v in spec.get("claimRef", {}).items() if k not in ("resourceVersion",)}
    spec["claimRef"] = claim_ref
    out = {"metadata": _meta(pv, replace), "spec": _substitute(spec, replace)}
    out["status"] = {"phase": pv.get("status", {}).get("phase")}
    return out


def normalise_endpoints(ep: Obj | None, replace: Mapping[str, str]) -> Obj | None:
    if ep is None:
        return None
    return {"metadata": _meta(ep, replace), "subsets": ep.get("subsets")}


def normalise_service(svc: Obj | None, replace: Mapping[str, str]) -> Obj | None:
    if svc is None:
        return None
    spec = {
        k: v
        for k, v in svc["spec"].items()
        # allocated by the API server, not chosen by the provisioner
        if k not in ("clusterIP", "clusterIPs")
    }
    return {"metadata": _meta(svc, replace), "spec": spec}


def normalise_events(events: Iterable[Obj], replace: Mapping[str, str]) -> list[tuple[str, ...]]:
    """(type, reason, message) per event, in order; repeats (count) folded."""
    out: list[tuple[str, ...]] = []
    for e in events:
        out.append(
            (
                e.get("type", ""),
                e.get("reason", ""),
                _substitute(e.get("message") or e.get("note") or "", replace),
            )
        )
    return out


def failed_delete_events(kube: RealKube, pv_name: str) -> list[Obj]:
    """VolumeFailedDelete events on the PV (events of cluster-scoped objects are in
    the default namespace)."""
    selector = f"involvedObject.name%3D{pv_name},reason%3DVolumeFailedDelete"
    return kube.get(f"/api/v1/events?fieldSelector={selector}")["items"]  # type: ignore[no-any-return]


def event_source(e: Obj) -> str:
    return str((e.get("source") or {}).get("component") or e.get("reportingComponent") or "")


_RANDOM_SUFFIX = re.compile(r"_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def normalise_volume(info: Obj, replace: Mapping[str, str]) -> Obj:
    """The parts of Heketi's volume info that the request chose."""
    name = _substitute(info.get("name", ""), replace)
    snapshot = info.get("snapshot", {})
    return {
        "size": info.get("size"),
        "name": name,
        "durability": info.get("durability"),
        "gid": info.get("gid"),
        "glustervolumeoptions": [o for o in info.get("glustervolumeoptions") or [] if o],
        "snapshot": {"enable": snapshot.get("enable"), "factor": snapshot.get("factor")},
        "cluster": info.get("cluster"),
    }


def normalise_request(body: Any, replace: Mapping[str, str]) -> Obj:
    """A POST /volumes body as Heketi reads it (absent = zero value), names replaced."""
    body = body if isinstance(body, dict) else {}
    durability = body.get("durability") or {}
    kind = durability.get("type") or "none"
    inner: Obj = {}
    if kind == "replicate":
        inner = {"replica": (durability.get("replicate") or {}).get("replica", 0)}
    elif kind == "disperse":
        d = durability.get("disperse") or {}
        inner = {"data": d.get("data", 0), "redundancy": d.get("redundancy", 0)}
    snapshot = body.get("snapshot") or {}
    return {
        "size": body.get("size", 0),
        "name": _substitute(body.get("name") or "", replace),
        "clusters": list(body.get("clusters") or []),
        "durability": {"type": kind, **inner},
        "gid": body.get("gid", 0),
        "glustervolumeoptions": list(body.get("glustervolumeoptions") or []),
        "block": bool(body.get("block", False)),
        "snapshot": {
            "enable": bool(snapshot.get("enable", False)),
            "factor": float(snapshot.get("factor", 0) or 0),
        },
    }


def differences(a: Any, b: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Field-by-field differences (dotted path, value in a, value in b)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += differences(a.get(k, _MISSING), b.get(k, _MISSING), f"{path}.{k}" if path else k)
        return out
    if a == b:
        return []
    return [(path, a, b)]


class _Missing:
    def __repr__(self) -> str:
        return "<absent>"


_MISSING: Any = _Missing()


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True, default=str)

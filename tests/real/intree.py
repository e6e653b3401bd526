"""The in-tree ``kubernetes.io/glusterfs`` provisioner next to ours, on real peers.

kube-controller-manager 1.25 still carries the in-tree provisioner: the PV controller
("persistentvolume-binder") provisions every claim whose class names
``kubernetes.io/glusterfs``, in its own goroutine per claim, with Heketi's Go client.
No flag or feature gate of 1.25 unregisters that plugin (``plugins.go`` always calls
``glusterfs.ProbeVolumePlugins()``), so "in-tree off" means a 1.26+ controller
manager, or none.

What this module adds to ``peers.py``:

- ``start_cluster(peers, version, workdir, audit_log=..., kcm_args=...)``: as
  ``peers.start_kube`` (same flags, same readiness checks), plus an optional audit log
  of every write (``--audit-policy-file``/``--audit-log-path``) and extra controller
  manager flags. ``restart_controller_manager(kube, peers, ...)`` /
  ``stop_controller_manager(kube)`` for the migration test.
- ``start_heketi_for(peers, workdir, auth=..., max_inflight=..., topology=...)``: as
  ``peers.start_heketi``, with auth optional (``restauthenabled: "false"`` needs a
  Heketi without it) and ``glusterfs.max_inflight_operations`` set.
- Object builders, waits (``wait_bound``, ``wait_gone``), and the normalisation that
  makes an in-tree PV / Endpoints / Service / event list / volume request comparable
  with ours (``normalise_*``), plus ``differences(a, b)``.

Storage addresses are from 192.0.2.0/24 (documentation range): a real API server
refuses loopback addresses in Endpoints, and nothing ever connects to these.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .peers import (
    HEKETI_ADMIN_KEY,
    HEKETI_USER_KEY,
    REPO,
    Peers,
    Process,
    RealHeketi,
    RealKube,
    _apiserver_argv,
    _controller_manager_argv,
    _no_insecure_warning,
    default_topology,
    free_port,
    local_get,
    make_pki,
    running,
    start_etcd,
    wait_for,
    write_kubeconfig,
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


# -- Kubernetes -----------------------------------------------------------------------

# Writes only (reads would dwarf them), at Metadata level, leases left out (leader
# election and node heartbeats are not provisioning work), one entry per request.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "verbs": ["get", "list", "watch"]},
        {"level": "None", "resources": [{"group": "coordination.k8s.io", "resources": ["leases"]}]},
        {"level": "Metadata"},
    ],
}


def _kcm_ready(port: int) -> Any:
    def ready() -> bool:
        r = local_get(f"https://127.0.0.1:{port}/healthz?verbose", timeout=5, verify=False)
        return r.status_code == 200 and "[+]persistentvolume-binder" in r.text

    return ready


def start_controller_manager(
    kube: RealKube, peers: Peers, *, extra_args: Sequence[str] = (), name: str = ""
) -> Process:
    """A kube-controller-manager of ``kube.version`` (peers.py's flags plus
    ``extra_args``), ready once its PV binder runs. The caller stops it."""
    config = kube.workdir / "kcm.kubeconfig"
    if not config.exists():
        config = write_kubeconfig(
            config,
            kube.server,
            kube.pki.ca,
            "system:kube-controller-manager",
            cert=kube.pki.cert("kcm"),
            key=kube.pki.key("kcm"),
        )
    port = free_port()
    argv = _controller_manager_argv(peers, kube.version, config, port, kube.pki, kube.workdir)
    argv += list(extra_args)
    proc = Process(name or "kube-controller-manager", argv, kube.workdir)
    try:
        with _no_insecure_warning():
            proc.wait_ready(_kcm_ready(port))
    except BaseException:
        proc.stop()
        raise
    return proc


def stop_controller_manager(kube: RealKube) -> None:
    if kube.controller_manager is not None:
        kube.controller_manager.stop()
        kube.controller_manager = None


def restart_controller_manager(
    kube: RealKube, peers: Peers, *, extra_args: Sequence[str] = ()
) -> Process:
    """Stop the running controller manager (if any) and start a new one."""
    stop_controller_manager(kube)
    restarts = len(list(kube.workdir.glob("kube-controller-manager*.log")))
    kube.controller_manager = start_controller_manager(
        kube, peers, extra_args=extra_args, name=f"kube-controller-manager-{restarts + 1}"
    )
    return kube.controller_manager


@contextlib.contextmanager
def start_cluster(
    peers: Peers,
    version: str,
    workdir: Path,
    *,
    audit_log: Path | None = None,
    kcm_args: Sequence[str] = (),
    controller_manager: bool = True,
    service_cidr: str | None = None,
) -> Iterator[RealKube]:
    """etcd + kube-apiserver (+ kube-controller-manager), as ``peers.start_kube``, with
    an optional audit log of every write, extra controller manager flags, and another
    Service range (peers.py's /24 holds 254 ClusterIPs, and every volume takes one)."""
    workdir.mkdir(parents=True, exist_ok=True)
    pki = make_pki(workdir / "pki")
    with start_etcd(peers, workdir) as etcd, contextlib.ExitStack() as stack:
        port = free_port()
        server = f"https://127.0.0.1:{port}"
        admin = write_kubeconfig(
            workdir / "admin.kubeconfig", server, pki.ca, "admin",
            cert=pki.cert("admin"), key=pki.key("admin"),
        )  # fmt: skip
        argv = _apiserver_argv(peers, version, etcd.url, port, pki, workdir)
        if service_cidr:  # the last occurrence of a flag wins
            argv.append(f"--service-cluster-ip-range={service_cidr}")
            kcm_args = [*kcm_args, f"--service-cluster-ip-range={service_cidr}"]
        if audit_log is not None:
            policy = workdir / "audit-policy.json"
            policy.write_text(json.dumps(AUDIT_POLICY))
            argv += [
                f"--audit-policy-file={policy}",
                f"--audit-log-path={audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
                "--audit-log-maxsize=0",  # never rotate: the benchmark reads one file
            ]
        api = stack.enter_context(running("kube-apiserver", argv, workdir))
        kube = RealKube(version, server, pki, workdir, admin, etcd, api)
        api.wait_ready(lambda: kube.session.get(f"{server}/readyz", timeout=5).status_code == 200)
        if controller_manager:
            kube.controller_manager = start_controller_manager(kube, peers, extra_args=kcm_args)
        try:
            yield kube
        finally:
            stop_controller_manager(kube)
            kube.session.close()


def audit_writes(path: Path, *, since: str = "") -> list[Obj]:
    """Audit events (ResponseComplete) of writes, optionally only those whose
    ``requestReceivedTimestamp`` is >= ``since`` (RFC 3339, microseconds)."""
    out = []
    with path.open() as f:
        for line in f:
            event = json.loads(line)
            if event.get("stage") != "ResponseComplete":
                continue
            if since and event.get("requestReceivedTimestamp", "") < since:
                continue
            out.append(event)
    return out


# -- Heketi ---------------------------------------------------------------------------


@contextlib.contextmanager
def start_heketi_for(
    peers: Peers,
    workdir: Path,
    *,
    auth: bool = True,
    max_inflight: int = 8,
    topology: Obj | None = None,
) -> Iterator[RealHeketi]:
    """As ``peers.start_heketi`` (mock executor, topology loaded by heketi-cli), with
    JWT auth optional and ``glusterfs.max_inflight_operations`` set (8 is Heketi's
    default). Storage addresses default to STORAGE_IPS."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: Obj = {
        "port": str(port),
        "use_auth": auth,
        "glusterfs": {
            "executor": "mock",
            "db": str(workdir / "heketi.db"),
            "loglevel": "warning",
            "max_inflight_operations": max_inflight,
        },
    }
    if auth:
        config["jwt"] = {"admin": {"key": HEKETI_ADMIN_KEY}, "user": {"key": HEKETI_USER_KEY}}
    cfg = workdir / "heketi.json"
    cfg.write_text(json.dumps(config, indent=1))
    cfg.chmod(0o600)
    url = f"http://127.0.0.1:{port}"
    argv = [peers.path("HEKETI"), f"--config={cfg}"]
    if not auth:
        argv.append("--disable-auth")
    with running("heketi", argv, workdir) as p:
        p.wait_ready(lambda: local_get(f"{url}/hello", timeout=2).status_code == 200)
        heketi = RealHeketi(url, HEKETI_ADMIN_KEY, HEKETI_USER_KEY, p, workdir)
        topo = workdir / "topology.json"
        topo.write_text(json.dumps(topology or default_topology(storage_ips=STORAGE_IPS)))
        heketi.cli("topology", "load", f"--json={topo}", heketi_cli=peers.path("HEKETI_CLI"))
        heketi.cluster_ids = list(heketi.get("/clusters")["clusters"])
        yield heketi


def heketi_volume_ids(heketi: RealHeketi) -> set[str]:
    return set(heketi.get("/volumes")["volumes"])


def heketi_volume(heketi: RealHeketi, volume_id: str) -> Obj:
    return heketi.get(f"/volumes/{volume_id}")  # type: ignore[no-any-return]


# -- objects --------------------------------------------------------------------------


def make_namespace(kube: RealKube, name: str) -> None:
    kube.request(
        "POST",
        "/api/v1/namespaces",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
        ok=(201, 409),
    )


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

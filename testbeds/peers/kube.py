"""etcd, kube-apiserver and kube-controller-manager on loopback, each with free ports
and the caller's work directory; the admin's client for the API.

``start_kube(peers, version, workdir, ...)`` -> ``RealKube``: etcd + kube-apiserver
(+ kube-controller-manager), with an optional audit log of every write, extra flags
for either server and another Service range. ``restart_controller_manager`` /
``stop_controller_manager`` for tests that swap the controller manager's flags.
``RealKube.request()`` talks to the API as the admin; ``.admin_kubeconfig`` is a file;
``.mint_serviceaccount_kubeconfig(namespace, name)`` makes a ServiceAccount, asks the
TokenRequest API for a token and writes a kubeconfig for it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ..harness.processes import Process, free_port, local_get, running, wait_for
from .binaries import KUBE_VERSIONS, Peers
from .pki import DEFAULT_LEAVES, Pki, make_pki, write_kubeconfig

SERVICE_CIDR = "10.0.0.0/24"  # never routed: only Service objects get addresses from it
ISSUER = "https://kubernetes.default.svc.cluster.local"

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


@dataclass
class Etcd:
    url: str
    process: Process


@contextlib.contextmanager
def start_etcd(peers: Peers, workdir: Path) -> Iterator[Etcd]:
    workdir.mkdir(parents=True, exist_ok=True)
    client, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{client}"
    argv = [
        peers.path("ETCD"),
        "--name=real",
        f"--data-dir={workdir / 'etcd-data'}",
        f"--listen-client-urls={url}",
        f"--advertise-client-urls={url}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=real=http://127.0.0.1:{peer}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync",  # a throw-away store: no fsync, much faster on CI disks
        "--log-level=warn",
    ]
    with running("etcd", argv, workdir) as p:
        p.wait_ready(lambda: local_get(f"{url}/health", timeout=2).json()["health"] == "true")
        yield Etcd(url, p)


@dataclass
class RealKube:
    version: str  # "1.25" or "current"
    server: str
    pki: Pki
    workdir: Path
    admin_kubeconfig: Path
    etcd: Etcd
    apiserver: Process
    controller_manager: Process | None = None
    session: requests.Session = field(default_factory=requests.Session)

    wait_for = staticmethod(wait_for)

    def __post_init__(self) -> None:
        # trust_env off: REQUESTS_CA_BUNDLE (set on many machines) would otherwise
        # replace session.verify, and no proxy has any business with loopback.
        self.session.trust_env = False
        self.session.verify = str(self.pki.ca)
        self.session.cert = (str(self.pki.cert("admin")), str(self.pki.key("admin")))

    def request(
        self, method: str, path: str, body: Any = None, *, ok: Sequence[int] = (200, 201), **kw: Any
    ) -> Any:
        """One API call as the admin; returns the decoded JSON, raises on other codes."""
        r = self.session.request(method, self.server + path, json=body, timeout=30, **kw)
        if r.status_code not in ok:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def create(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def server_version(self) -> str:
        return str(self.get("/version")["gitVersion"])

    def mint_serviceaccount_kubeconfig(
        self, namespace: str, name: str, *, expiration_seconds: int = 3600, path: Path | None = None
    ) -> Path:
        """Create the namespace (if needed) and the ServiceAccount ``namespace/name``,
        ask the TokenRequest API for a token and write a kubeconfig that uses it."""
        self.request(
            "POST",
            "/api/v1/namespaces",
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            ok=(201, 409),
        )
        self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
            ok=(201, 409),
        )
        tr = self.create(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration_seconds},
            },
        )
        token = tr["status"]["token"]
        path = path or self.workdir / f"sa-{namespace}-{name}.kubeconfig"
        return write_kubeconfig(
            path,
            self.server,
            self.pki.ca,
            f"system:serviceaccount:{namespace}:{name}",
            token=token,
            namespace=namespace,
        )


def _apiserver_argv(
    peers: Peers,
    version: str,
    etcd_url: str,
    port: int,
    pki: Pki,
    workdir: Path,
    address: str = "127.0.0.1",
) -> list[str]:
    argv = [
        peers.kube_apiserver(version),
        f"--etcd-servers={etcd_url}",
        f"--bind-address={address}",
        f"--advertise-address={address}",
        f"--secure-port={port}",
        f"--cert-dir={workdir / 'apiserver-certs'}",
        f"--tls-cert-file={pki.cert('apiserver')}",
        f"--tls-private-key-file={pki.key('apiserver')}",
        f"--client-ca-file={pki.ca}",
        # the front-proxy settings that kube-system/extension-apiserver-authentication
        # publishes; without them the controller manager's delegated authentication
        # logs "missing content for CA bundle" at start. No certificate with this name
        # is ever issued, so no client can use them.
        f"--requestheader-client-ca-file={pki.ca}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        # the Node authorizer and NodeRestriction: a kubelet's own certificate
        # (system:node:<name>) reaches only its node's objects, as in a real cluster
        "--authorization-mode=Node,RBAC",
        "--enable-admission-plugins=NodeRestriction",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--service-account-issuer={ISSUER}",
        f"--service-account-signing-key-file={pki.dir / 'sa.key'}",
        f"--service-account-key-file={pki.dir / 'sa.pub'}",
        f"--api-audiences={ISSUER}",
        # On loopback the "kubernetes" Service's Endpoints would name 127.0.0.1, which
        # Endpoints validation refuses: the lease reconciler would log that every 10 s.
        # On another address (the node bed's) pods reach the API server through them.
        "--endpoint-reconciler-type=" + ("none" if address == "127.0.0.1" else "lease"),
        "--profiling=false",
        "--v=1",
    ]
    return argv


def _controller_manager_argv(
    peers: Peers, version: str, kubeconfig: Path, port: int, pki: Pki, workdir: Path
) -> list[str]:
    return [
        peers.kube_controller_manager(version),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={workdir / 'kcm-certs'}",
        "--leader-elect=false",
        # every default controller, which includes the PV binder
        # ("persistentvolume-binder", "persistentvolume-binder-controller" since 1.3x),
        # pv-protection, pvc-protection, garbage collector and serviceaccount-token
        "--controllers=*",
        # each controller runs as its own ServiceAccount, as in a real cluster, so the
        # RBAC roles of the release are what the binder and the others get
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki.dir / 'sa.key'}",
        f"--root-ca-file={pki.ca}",
        f"--cluster-signing-cert-file={pki.ca}",
        f"--cluster-signing-key-file={pki.dir / 'ca.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--profiling=false",
        "--v=2",
    ]


def _kcm_ready(port: int) -> Any:
    def ready() -> bool:
        # /healthz answers 200 before any controller runs; each controller adds its own
        # check once started, so wait for the PV binder's ("persistentvolume-binder",
        # "persistentvolume-binder-controller").
        r = local_get(f"https://127.0.0.1:{port}/healthz?verbose", timeout=5, verify=False)
        return r.status_code == 200 and "[+]persistentvolume-binder" in r.text

    return ready


def start_controller_manager(
    kube: RealKube, peers: Peers, *, extra_args: Sequence[str] = (), name: str = ""
) -> Process:
    """A kube-controller-manager of ``kube.version`` (the flags above plus
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
def start_kube(
    peers: Peers,
    version: str,
    workdir: Path,
    *,
    controller_manager: bool = True,
    audit_log: Path | None = None,
    kcm_args: Sequence[str] = (),
    apiserver_args: Sequence[str] = (),
    service_cidr: str | None = None,
    address: str = "127.0.0.1",
    leaves: Mapping[str, tuple[str, str, str]] | None = None,
) -> Iterator[RealKube]:
    """etcd + kube-apiserver (+ kube-controller-manager) of ``version`` ("1.25" or
    "current"), with an optional audit log of every write, extra flags for either
    server (the last occurrence of a flag wins), and another Service range (the
    default /24 holds 254 ClusterIPs, and every volume of ours takes one).

    ``address``: where the API server serves and what it advertises (a bed with pods
    gives an address they reach; its serving certificate must name it: see
    ``pki.node_leaves``). ``leaves``: certificates to issue besides the default ones
    (same name: replaces it)."""
    if version not in KUBE_VERSIONS:
        raise ValueError(f"version must be one of {KUBE_VERSIONS}, not {version!r}")
    workdir.mkdir(parents=True, exist_ok=True)
    pki = make_pki(workdir / "pki", {**DEFAULT_LEAVES, **(leaves or {})})
    with start_etcd(peers, workdir) as etcd, contextlib.ExitStack() as stack:
        port = free_port()
        server = f"https://{address}:{port}"
        admin = write_kubeconfig(
            workdir / "admin.kubeconfig",
            server,
            pki.ca,
            "admin",
            cert=pki.cert("admin"),
            key=pki.key("admin"),
        )
        argv = _apiserver_argv(peers, version, etcd.url, port, pki, workdir, address)
        if service_cidr:
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
        argv += list(apiserver_args)
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


def audit_writes(path: Path, *, since: str = "") -> list[dict[str, Any]]:
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


@contextlib.contextmanager
def _no_insecure_warning() -> Iterator[None]:
    import warnings

    import urllib3

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        yield

"""Start the real peers (etcd, kube-apiserver, kube-controller-manager, Heketi with its
mock executor) on loopback, each with free ports and its own temporary directory.

The binaries come from ``testbeds/peers/build`` (see its README). Nothing here sleeps
to synchronise: every start polls a readiness endpoint until a deadline and fails with
the tail of the peer's log when the deadline passes or the process exits.

Entry points (all context managers, each stops what it started, in reverse order):

- ``find_peers()`` -> ``Peers`` (binaries and versions), or ``PeersNotBuilt``
- ``start_etcd(peers, workdir)`` -> ``Etcd``
- ``start_kube(peers, version, workdir)`` -> ``RealKube``: etcd + kube-apiserver +
  kube-controller-manager; ``version`` is ``"1.25"`` or ``"current"``.
  ``RealKube.request()`` talks to the API as the admin; ``.admin_kubeconfig`` is a
  file; ``.mint_serviceaccount_kubeconfig(namespace, name)`` makes a ServiceAccount,
  asks the TokenRequest API for a token and writes a kubeconfig for it.
- ``start_heketi(peers, workdir)`` -> ``RealHeketi``: JWT auth on, mock executor,
  a 3-node topology loaded with heketi-cli; ``.get(path)`` signs a JWT with ``qsh``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import jwt
import requests
import yaml

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "testbeds" / "peers" / "build"
KUBE_VERSIONS = ("1.25", "current")
_ENV_SUFFIX = {"1.25": "125", "current": "CURRENT"}
SERVICE_CIDR = "10.0.0.0/24"  # never routed: only Service objects get addresses from it
ISSUER = "https://kubernetes.default.svc.cluster.local"
HEKETI_ADMIN_KEY = "real-peers-admin-key-0123456789abcdef"
HEKETI_USER_KEY = "real-peers-user-key-0123456789abcdefg"
START_TIMEOUT = 120.0

T = TypeVar("T")


class PeersNotBuilt(RuntimeError):
    """The binaries are missing or stale (the message says how to build them)."""


class PeerFailed(RuntimeError):
    """A peer did not come up in time, or exited; the message has its log tail."""


# -- finding the binaries -----------------------------------------------------------


@dataclass(frozen=True)
class Peers:
    env: dict[str, str]  # peers.env: KEY=absolute path / version

    def path(self, key: str) -> str:
        return self.env[key]

    def kube_apiserver(self, version: str) -> str:
        return self.env[f"KUBE_APISERVER_{_ENV_SUFFIX[version]}"]

    def kube_controller_manager(self, version: str) -> str:
        return self.env[f"KUBE_CONTROLLER_MANAGER_{_ENV_SUFFIX[version]}"]

    def kube_version(self, version: str) -> str:
        return self.env.get(f"KUBE_VERSION_{_ENV_SUFFIX[version]}", "?")


REQUIRED_KEYS = (
    "ETCD",
    "HEKETI",
    "HEKETI_CLI",
    "KUBE_APISERVER_125",
    "KUBE_CONTROLLER_MANAGER_125",
    "KUBE_APISERVER_CURRENT",
    "KUBE_CONTROLLER_MANAGER_CURRENT",
)


VERSION_KEYS = ("ETCD_VERSION", "HEKETI_VERSION", "KUBE_VERSION_125", "KUBE_VERSION_CURRENT")


def find_peers() -> Peers:
    """The binaries: from the environment when every variable of peers.env is set
    there (e.g. ``set -a; . peers.env``), else from ``testbeds/peers/build --check
    --print-env``, which builds nothing and fails when a peer is missing or stale."""
    if all(os.environ.get(k) for k in REQUIRED_KEYS):
        env = {k: os.environ[k] for k in (*REQUIRED_KEYS, *VERSION_KEYS) if k in os.environ}
    else:
        out = subprocess.run(
            [sys.executable, str(BUILD_SCRIPT), "--check", "--print-env"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if out.returncode != 0:
            raise PeersNotBuilt(out.stderr.strip() or f"exit {out.returncode}")
        env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    missing = [k for k in REQUIRED_KEYS if not os.access(env.get(k, ""), os.X_OK)]
    if missing:
        raise PeersNotBuilt(f"not executable: {', '.join(missing)}")
    if not shutil.which("openssl"):
        raise PeersNotBuilt("the harness needs the openssl command (apt-get install openssl)")
    return Peers(env)


# -- waiting and processes ----------------------------------------------------------


def wait_for(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.1,
    check: Callable[[], None] | None = None,
) -> T:
    """Poll ``condition`` until it returns a truthy value; raise after ``timeout`` s.
    ``check`` runs before each poll and may raise (e.g. when a process died)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        if check is not None:
            check()
        try:
            value = condition()
            if value:
                return value
        except (requests.RequestException, OSError, ValueError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"{what}: not within {timeout:.0f} s" + (f" (last error: {last})" if last else "")
            )
        time.sleep(interval)  # the polling interval, not a synchronisation


def local_get(url: str, **kw: Any) -> requests.Response:
    """GET without the environment's proxies and CA bundle (everything is loopback)."""
    with requests.Session() as s:
        s.trust_env = False
        return s.get(url, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A peer process writing its output to ``<workdir>/<name>.log``."""

    def __init__(
        self, name: str, argv: Sequence[str], workdir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    def check_running(self) -> None:
        rc = self.proc.poll()
        if rc is not None:
            raise PeerFailed(
                f"{self.name} exited with {rc}; log {self.log_path}:\n{self.log_tail()}"
            )

    def wait_ready(self, condition: Callable[[], Any], timeout: float = START_TIMEOUT) -> None:
        try:
            wait_for(condition, timeout, f"{self.name} ready", check=self.check_running)
        except TimeoutError as e:
            raise PeerFailed(f"{e}; log {self.log_path}:\n{self.log_tail()}") from None

    def stop(self, grace: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


@contextlib.contextmanager
def running(
    name: str, argv: Sequence[str], workdir: Path, env: dict[str, str] | None = None
) -> Iterator[Process]:
    p = Process(name, argv, workdir, env)
    try:
        yield p
    finally:
        p.stop()


# -- PKI (openssl command) ----------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    out = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {out.stderr.strip()}")


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


def make_pki(d: Path) -> Pki:
    """A CA, the API server's serving certificate, client certificates for the admin
    (system:masters) and the controller manager, and the service-account key pair."""
    d.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3",
        "-subj",
        "/CN=heketi-provisioner-real-peers-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        cwd=d,
    )
    leaves = {
        "apiserver": (
            "/CN=kube-apiserver",
            "serverAuth",
            "IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes.default.svc",
        ),
        "admin": ("/O=system:masters/CN=real-peers-admin", "clientAuth", ""),
        "kcm": ("/CN=system:kube-controller-manager", "clientAuth", ""),
    }
    for name, (subject, usage, sans) in leaves.items():
        ext = d / f"{name}.ext"
        ext.write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,"
            f"keyEncipherment\nextendedKeyUsage={usage}\n"
            + (f"subjectAltName={sans}\n" if sans else "")
        )
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            subject,
            cwd=d,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.crt",
            "-days",
            "3",
            "-extfile",
            f"{name}.ext",
            cwd=d,
        )
    _openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key", cwd=d
    )
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)
    return Pki(d)


def write_kubeconfig(
    path: Path,
    server: str,
    ca: Path,
    user: str,
    *,
    cert: Path | None = None,
    key: Path | None = None,
    token: str | None = None,
    namespace: str = "default",
) -> Path:
    creds: dict[str, str] = {}
    if cert and key:
        creds = {"client-certificate": str(cert), "client-key": str(key)}
    if token:
        creds["token"] = token
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "real", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": user, "user": creds}],
        "contexts": [
            {"name": user, "context": {"cluster": "real", "user": user, "namespace": namespace}}
        ],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


# -- etcd -----------------------------------------------------------------------------


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


# -- Kubernetes -----------------------------------------------------------------------


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
    peers: Peers, version: str, etcd_url: str, port: int, pki: Pki, workdir: Path
) -> list[str]:
    argv = [
        peers.kube_apiserver(version),
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
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
        "--authorization-mode=Node,RBAC",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--service-account-issuer={ISSUER}",
        f"--service-account-signing-key-file={pki.dir / 'sa.key'}",
        f"--service-account-key-file={pki.dir / 'sa.pub'}",
        f"--api-audiences={ISSUER}",
        # the "kubernetes" Service's Endpoints would name 127.0.0.1, which Endpoints
        # validation refuses (loopback): the lease reconciler would log that every 10 s
        "--endpoint-reconciler-type=none",
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


@contextlib.contextmanager
def start_kube(
    peers: Peers, version: str, workdir: Path, *, controller_manager: bool = True
) -> Iterator[RealKube]:
    """etcd + kube-apiserver (+ kube-controller-manager) of ``version``."""
    if version not in KUBE_VERSIONS:
        raise ValueError(f"version must be one of {KUBE_VERSIONS}, not {version!r}")
    workdir.mkdir(parents=True, exist_ok=True)
    pki = make_pki(workdir / "pki")
    with start_etcd(peers, workdir) as etcd, contextlib.ExitStack() as stack:
        port = free_port()
        server = f"https://127.0.0.1:{port}"
        admin = write_kubeconfig(
            workdir / "admin.kubeconfig",
            server,
            pki.ca,
            "admin",
            cert=pki.cert("admin"),
            key=pki.key("admin"),
        )
        api = stack.enter_context(
            running(
                "kube-apiserver",
                _apiserver_argv(peers, version, etcd.url, port, pki, workdir),
                workdir,
            )
        )
        kube = RealKube(version, server, pki, workdir, admin, etcd, api)

        def ready() -> bool:
            r = kube.session.get(f"{server}/readyz", timeout=5)
            return r.status_code == 200

        api.wait_ready(ready)
        if controller_manager:
            kcm_config = write_kubeconfig(
                workdir / "kcm.kubeconfig",
                server,
                pki.ca,
                "system:kube-controller-manager",
                cert=pki.cert("kcm"),
                key=pki.key("kcm"),
            )
            kport = free_port()
            kcm = stack.enter_context(
                running(
                    "kube-controller-manager",
                    _controller_manager_argv(peers, version, kcm_config, kport, pki, workdir),
                    workdir,
                )
            )
            kube.controller_manager = kcm

            def kcm_ready() -> bool:
                # /healthz answers 200 before any controller runs; each controller adds
                # its own check once started, so wait for the PV binder's
                # ("persistentvolume-binder", "persistentvolume-binder-controller").
                r = local_get(f"https://127.0.0.1:{kport}/healthz?verbose", timeout=5, verify=False)
                return r.status_code == 200 and "[+]persistentvolume-binder" in r.text

            with _no_insecure_warning():
                kcm.wait_ready(kcm_ready)
        try:
            yield kube
        finally:
            kube.session.close()


@contextlib.contextmanager
def _no_insecure_warning() -> Iterator[None]:
    import warnings

    import urllib3

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        yield


# -- Heketi ---------------------------------------------------------------------------


def default_topology(
    nodes: int = 3, devices: int = 2, storage_ips: Sequence[str] | None = None
) -> dict[str, Any]:
    """One cluster; each node has ``devices`` devices (the mock executor reports each
    as 500 GiB) and a storage address, by default from the documentation range
    192.0.2.0/24 (192.0.2.11, .12, ...). Nothing ever connects to these addresses
    (mock executor, no kubelet).

    A real API server refuses loopback addresses in Endpoints ("may not be in the
    loopback range"), and both provisioners write the storage addresses into
    Endpoints, so the default is not loopback."""
    ips = list(storage_ips) if storage_ips else [f"192.0.2.{i + 11}" for i in range(nodes)]
    if len(ips) != nodes:
        raise ValueError(f"{nodes} nodes need {nodes} storage addresses, not {len(ips)}")
    return {
        "clusters": [
            {
                "nodes": [
                    {
                        "node": {
                            "hostnames": {"manage": [f"node{i + 1}"], "storage": [ips[i]]},
                            "zone": i + 1,
                        },
                        "devices": [
                            {"name": f"/dev/vd{chr(ord('b') + j)}", "destroydata": False}
                            for j in range(devices)
                        ],
                    }
                    for i in range(nodes)
                ]
            }
        ]
    }


BLOCK_HOSTING_GIB = 100
"""``block_hosting_volume_size`` of every real Heketi here (and of the sandbox)."""


def heketi_token(user: str, key: str, method: str, path: str, lifetime: float = 300.0) -> str:
    """Heketi's per-request JWT: HS256, ``iss`` = user, ``qsh`` = sha256("METHOD&/path")."""
    now = int(time.time())
    qsh = hashlib.sha256(f"{method.upper()}&{path}".encode()).hexdigest()
    return jwt.encode(
        {"iss": user, "iat": now - 60, "exp": now + int(lifetime), "qsh": qsh},
        key,
        algorithm="HS256",
    )


@dataclass
class RealHeketi:
    url: str
    admin_key: str
    user_key: str
    process: Process
    workdir: Path
    cluster_ids: list[str] = field(default_factory=list)
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.trust_env = False  # no proxy for loopback

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: str = "admin",
        key: str | None = None,
    ) -> requests.Response:
        key = key if key is not None else (self.admin_key if user == "admin" else self.user_key)
        headers = {"Authorization": f"bearer {heketi_token(user, key, method, path)}"}
        return self.session.request(
            method, self.url + path, json=body, headers=headers, timeout=30, allow_redirects=False
        )

    def get(self, path: str, **kw: Any) -> Any:
        r = self.request("GET", path, **kw)
        r.raise_for_status()
        return r.json()

    def hello(self) -> str:
        return self.session.get(f"{self.url}/hello", timeout=10).text

    def cli(self, *args: str, heketi_cli: str) -> str:
        out = subprocess.run(
            [
                heketi_cli,
                "--server",
                self.url,
                "--user",
                "admin",
                "--secret",
                self.admin_key,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if out.returncode != 0:
            raise RuntimeError(f"heketi-cli {' '.join(args)}: {out.stdout}{out.stderr}")
        return out.stdout


@contextlib.contextmanager
def start_heketi(
    peers: Peers, workdir: Path, *, topology: dict[str, Any] | None = None
) -> Iterator[RealHeketi]:
    """Heketi with JWT auth and the mock executor (real REST API, allocator, async
    operations and BoltDB; no Gluster nodes), and ``topology`` loaded by heketi-cli.
    Heketi v10 has no listen-address setting: it listens on every interface."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "port": str(port),
        "use_auth": True,
        "jwt": {"admin": {"key": HEKETI_ADMIN_KEY}, "user": {"key": HEKETI_USER_KEY}},
        "glusterfs": {
            "executor": "mock",
            "db": str(workdir / "heketi.db"),
            "loglevel": "info",
            # Block volumes: Heketi makes block-hosting volumes itself. Its default
            # size (1100 GiB, replica 3) cannot fit 3 nodes of 2 x 500 GiB devices.
            "auto_create_block_hosting_volume": True,
            "block_hosting_volume_size": BLOCK_HOSTING_GIB,
        },
    }
    cfg = workdir / "heketi.json"
    cfg.write_text(json.dumps(config, indent=1))
    cfg.chmod(0o600)
    url = f"http://127.0.0.1:{port}"
    with running("heketi", [peers.path("HEKETI"), f"--config={cfg}"], workdir) as p:
        p.wait_ready(lambda: local_get(f"{url}/hello", timeout=2).status_code == 200)
        heketi = RealHeketi(url, HEKETI_ADMIN_KEY, HEKETI_USER_KEY, p, workdir)
        topo = workdir / "topology.json"
        topo.write_text(json.dumps(topology or default_topology(), indent=1))
        heketi.cli("topology", "load", f"--json={topo}", heketi_cli=peers.path("HEKETI_CLI"))
        heketi.cluster_ids = list(heketi.get("/clusters")["clusters"])
        yield heketi

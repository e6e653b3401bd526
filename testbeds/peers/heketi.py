"""Heketi v10 on loopback, with the mock executor by default, and its topology loaded
by heketi-cli; the admin's signed client.

``start_heketi(peers, workdir, ...)`` -> ``RealHeketi``. The mock executor runs the
real REST API, JWT auth, allocator, async operations and BoltDB without Gluster
nodes; a bed with real nodes passes its executor settings in ``glusterfs`` and its
own ``topology``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import requests

from ..harness.processes import Process, free_port, local_get, running
from .binaries import Peers

HEKETI_ADMIN_KEY = "real-peers-admin-key-0123456789abcdef"
HEKETI_USER_KEY = "real-peers-user-key-0123456789abcdefg"


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
    peers: Peers,
    workdir: Path,
    *,
    topology: Mapping[str, Any] | None = None,
    auth: bool = True,
    max_inflight: int | None = None,
    loglevel: str = "info",
    glusterfs: Mapping[str, Any] | None = None,
    bed: str = "peers",
) -> Iterator[RealHeketi]:
    """Heketi with JWT auth (unless ``auth`` is false: ``restauthenabled: "false"``
    classes need a Heketi without it) and the mock executor, ``topology`` (default:
    ``default_topology()``) loaded by heketi-cli. ``max_inflight`` sets
    ``glusterfs.max_inflight_operations`` (Heketi's default is 8); ``glusterfs`` adds
    or overrides keys of that section (another executor, its settings).
    Heketi v10 has no listen-address setting: it listens on every interface."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    section: dict[str, Any] = {
        "executor": "mock",
        "db": str(workdir / "heketi.db"),
        "loglevel": loglevel,
        # Block volumes: Heketi makes block-hosting volumes itself. Its default
        # size (1100 GiB, replica 3) cannot fit 3 nodes of 2 x 500 GiB devices.
        "auto_create_block_hosting_volume": True,
        "block_hosting_volume_size": BLOCK_HOSTING_GIB,
    }
    if max_inflight is not None:
        section["max_inflight_operations"] = max_inflight
    section.update(glusterfs or {})
    config: dict[str, Any] = {"port": str(port), "use_auth": auth, "glusterfs": section}
    if auth:
        config["jwt"] = {"admin": {"key": HEKETI_ADMIN_KEY}, "user": {"key": HEKETI_USER_KEY}}
    cfg = workdir / "heketi.json"
    cfg.write_text(json.dumps(config, indent=1))
    cfg.chmod(0o600)
    url = f"http://127.0.0.1:{port}"
    argv = [peers.path("HEKETI"), f"--config={cfg}"]
    if not auth:
        argv.append("--disable-auth")
    with running("heketi", argv, workdir, bed=bed) as p:
        p.wait_ready(lambda: local_get(f"{url}/hello", timeout=2).status_code == 200)
        heketi = RealHeketi(url, HEKETI_ADMIN_KEY, HEKETI_USER_KEY, p, workdir)
        topo = workdir / "topology.json"
        topo.write_text(json.dumps(topology or default_topology(), indent=1))
        heketi.cli("topology", "load", f"--json={topo}", heketi_cli=peers.path("HEKETI_CLI"))
        heketi.cluster_ids = list(heketi.get("/clusters")["clusters"])
        yield heketi

"""Where the peers' binaries are: ``peers.env`` of ``testbeds/peers/build``.

Nothing is built here: a missing or stale peer raises ``PeersNotBuilt`` with the
command that builds it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "testbeds" / "peers" / "build"
KUBE_VERSIONS = ("1.25", "current")
_ENV_SUFFIX = {"1.25": "125", "current": "CURRENT"}


class PeersNotBuilt(RuntimeError):
    """The binaries are missing or stale (the message says how to build them)."""


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
# The peer sets (directories of testbeds/peers) the keys above come from.
PEER_SETS = ("etcd", "heketi", "k8s-1.25", "k8s-current")
# The node bed's kubelet, kube-scheduler and kube-proxy (peer set k8s-1.25-node).
NODE_KEYS = ("KUBELET_125", "KUBE_SCHEDULER_125", "KUBE_PROXY_125")
NODE_PEER_SET = "k8s-1.25-node"


def find_peers(*, node: bool = False) -> Peers:
    """The binaries: from the environment when every variable of peers.env is set
    there (e.g. ``set -a; . peers.env``), else from ``testbeds/peers/build --check
    --print-env``, which builds nothing and fails when a peer is missing or stale.
    ``node``: the node bed's binaries too (else they are neither needed nor checked)."""
    required = (*REQUIRED_KEYS, *NODE_KEYS) if node else REQUIRED_KEYS
    sets = (*PEER_SETS, NODE_PEER_SET) if node else PEER_SETS
    if all(os.environ.get(k) for k in required):
        env = {k: os.environ[k] for k in (*required, *VERSION_KEYS) if k in os.environ}
    else:
        out = subprocess.run(
            [
                sys.executable,
                str(BUILD_SCRIPT),
                "--check",
                "--print-env",
                f"--only={','.join(sets)}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if out.returncode != 0:
            raise PeersNotBuilt(out.stderr.strip() or f"exit {out.returncode}")
        env = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    missing = [k for k in required if not os.access(env.get(k, ""), os.X_OK)]
    if missing:
        raise PeersNotBuilt(f"not executable: {', '.join(missing)}")
    if not shutil.which("openssl"):
        raise PeersNotBuilt("the harness needs the openssl command (apt-get install openssl)")
    return Peers(env)

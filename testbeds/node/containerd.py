"""containerd (Debian's 1.6) and runc for the node bed, with every path of its own.

Settings this machine needs (DESIGN.md, Real node): ``restrict_oom_score_adj`` (no
CAP_SYS_RESOURCE in this VM, so runc cannot lower the pause container's OOM score);
images are found by their normalised names (``docker.io/library/busybox:1.35``), so
they are imported under those; the sandbox image is our pause.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..harness.processes import Process
from . import paths
from .images import PAUSE, Image
from .network import BRIDGE, Ranges

CNI_BIN = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
NAMESPACE = "k8s.io"  # the CRI plugin's containerd namespace


def config_toml(ranges: Ranges) -> str:
    root, run = paths.root() / "containerd", paths.RUN / "containerd"
    cni_conf = paths.root() / "cni" / "net.d"
    return f"""version = 2
root = "{root}"
state = "{run}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{paths.containerd_socket()}"

[ttrpc]
  address = "{paths.RUN / "containerd-ttrpc.sock"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{root / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE.ref}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  disable_apparmor = true
  tolerate_missing_hugetlb_controller = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{cni_conf}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{run / "runc"}"
"""


def cni_config(ranges: Ranges) -> dict[str, object]:
    """The bridge with host-local IPAM; no masquerading, no port mapping."""
    return {
        "cniVersion": "0.4.0",
        "name": "hpnode",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": ranges.pod_cidr, "gateway": ranges.pod_gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(paths.root() / "cni" / "ipam"),
                },
            }
        ],
    }


def ctr(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        ["ctr", f"--address={paths.containerd_socket()}", f"--namespace={NAMESPACE}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and out.returncode != 0:
        raise RuntimeError(f"ctr {' '.join(args)}: {out.stderr.strip()}")
    return out


@dataclass
class Containerd:
    process: Process

    def import_image(self, image: Image) -> None:
        ctr("images", "import", str(image.archive), timeout=600)
        listed = ctr("images", "ls", "-q").stdout.split()
        if image.ref not in listed:
            raise RuntimeError(f"{image.ref} not among containerd's images after import: {listed}")

    def images(self) -> list[str]:
        return ctr("images", "ls", "-q").stdout.split()


def start(ranges: Ranges, workdir: Path) -> Containerd:
    """containerd with the bed's configuration; the caller stops it."""
    for tool in ("containerd", "runc", "ctr"):
        if not shutil.which(tool):
            raise RuntimeError(f"{tool} not found: apt-get install containerd runc")
    if not (CNI_BIN / "bridge").exists():
        raise RuntimeError(
            f"{CNI_BIN}/bridge not found: apt-get install containernetworking-plugins"
        )
    config = paths.root() / "containerd.toml"
    config.write_text(config_toml(ranges))
    net_d = paths.root() / "cni" / "net.d"
    net_d.mkdir(parents=True, exist_ok=True)
    (net_d / "10-hpnode.conflist").write_text(json.dumps(cni_config(ranges), indent=1))
    paths.RUN.mkdir(parents=True, exist_ok=True)
    proc = Process("containerd", ["containerd", f"--config={config}"], workdir, bed="node")
    try:
        proc.wait_ready(lambda: ctr("version", check=False, timeout=10).returncode == 0, 60)
    except BaseException:
        proc.stop()
        raise
    return Containerd(proc)

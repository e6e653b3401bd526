"""``start_node(peers, workdir)``: a one-node Kubernetes 1.25.16 cluster on this machine.

etcd, kube-apiserver (Node and RBAC authorizers, NodeRestriction) and
kube-controller-manager from ``testbeds.peers``, serving on the node's address; then
kube-scheduler, containerd with the bed's images imported, the kubelet (Ready), and
kube-proxy (iptables mode, rules synced). Stopping stops them in reverse order and
then runs ``cleanup.clean()``, which removes every container, mount, link, iptables
rule, cgroup and directory the bed made; starting runs it first, for a killed run.

One node bed at a time per machine (``/run/hpnode.lock``): the iptables rules,
links and sysctls are the host's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..harness.processes import Process
from ..peers import Peers, RealKube, node_leaves, start_kube
from . import cleanup, components, images, network, paths
from .containerd import Containerd
from .containerd import start as start_containerd
from .network import Ranges

COMMANDS = {
    "containerd": "containerd",
    "runc": "runc",
    "ctr": "containerd",
    "iptables": "iptables",
    "ip": "iproute2",
    "mount": "mount",
    "conntrack": "conntrack",
}


class NodeUnavailable(RuntimeError):
    """This machine cannot run the node bed; the message says what is missing."""


def preflight(peers: Peers | None = None) -> None:
    """Raise ``NodeUnavailable`` naming the first thing missing."""
    if os.geteuid() != 0:
        raise NodeUnavailable("the node bed needs root (containers, mounts, iptables)")
    missing = sorted({pkg for cmd, pkg in COMMANDS.items() if not shutil.which(cmd)})
    if missing:
        raise NodeUnavailable(f"missing commands: apt-get install {' '.join(missing)}")
    if not Path("/usr/lib/cni/bridge").exists():
        raise NodeUnavailable("missing CNI plugins: apt-get install containernetworking-plugins")
    if not (paths.CGROUP_MOUNT / "memory").is_dir():
        raise NodeUnavailable("no cgroup v1 memory hierarchy under /sys/fs/cgroup")
    stale = images.check()
    if stale:
        raise NodeUnavailable(
            f"images not built: {', '.join(stale)} (run python -m testbeds.node images)"
        )


@dataclass
class Node:
    kube: RealKube
    peers: Peers
    ranges: Ranges
    containerd: Containerd
    scheduler: Process
    kubelet: Process
    kube_proxy: Process
    workdir: Path
    name: str = components.NODE_NAME

    @property
    def node_ip(self) -> str:
        return self.ranges.node_ip

    def processes(self) -> list[Process]:
        procs = [self.kube.etcd.process, self.kube.apiserver]
        if self.kube.controller_manager is not None:
            procs.append(self.kube.controller_manager)
        return [*procs, self.scheduler, self.containerd.process, self.kubelet, self.kube_proxy]


@contextlib.contextmanager
def exclusive() -> Iterator[None]:
    lock = paths.lock_file()
    with open(lock, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NodeUnavailable(f"another node bed runs on this machine ({lock})") from None
        yield


@contextlib.contextmanager
def start_node(peers: Peers, workdir: Path) -> Iterator[Node]:
    preflight(peers)
    kube_proxy_bin = peers.path("KUBE_PROXY_125")
    workdir.mkdir(parents=True, exist_ok=True)
    with exclusive():
        cleanup.clean(kube_proxy=kube_proxy_bin)  # what a killed run left
        try:
            ranges = network.choose_ranges()
            paths.root().mkdir(parents=True, exist_ok=True)
            cleanup.save_sysctls()
            cleanup.mark_pod_logs()
            network.set_up(ranges)
            kube_dir = workdir / "kube"
            with (
                start_kube(
                    peers,
                    "1.25",
                    kube_dir,
                    address=ranges.node_ip,
                    service_cidr=ranges.service_cidr,
                    leaves=node_leaves(components.NODE_NAME, ranges.node_ip, ranges.service_ip),
                    apiserver_args=components.apiserver_args(kube_dir / "pki"),
                ) as kube,
                contextlib.ExitStack() as stack,
            ):
                scheduler = components.start_scheduler(kube, peers, workdir)
                stack.callback(scheduler.stop)
                ctrd = start_containerd(ranges, workdir)
                stack.callback(ctrd.process.stop)
                for image in images.node_images():
                    ctrd.import_image(image)
                kubelet = components.start_kubelet(kube, peers, ranges, workdir)
                stack.callback(kubelet.stop)
                proxy = components.start_kube_proxy(kube, peers, ranges, workdir)
                stack.callback(proxy.stop)
                yield Node(kube, peers, ranges, ctrd, scheduler, kubelet, proxy, workdir)
        finally:
            cleanup.clean(kube_proxy=kube_proxy_bin)

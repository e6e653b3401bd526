"""kube-scheduler, kubelet and kube-proxy v1.25.16 (``testbeds/peers/build``'s
``k8s-1.25-node``), each under its own identity from the cluster's PKI
(``testbeds.peers.pki.node_leaves``), each ready on a condition it reports itself.

The kubelet serves on the node's address with a certificate of the cluster's CA;
the API server reaches it there (``--kubelet-preferred-address-types=InternalIP``,
see ``apiserver_args``). kube-proxy runs in iptables mode and leaves the host's
conntrack sysctls alone (``conntrack.maxPerCore: 0``).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..harness.processes import Process, free_port, local_get
from ..peers import Peers, RealKube, write_kubeconfig
from . import paths
from .images import PAUSE
from .network import Ranges

NODE_NAME = "hpnode"


def apiserver_args(pki_dir: Path) -> list[str]:
    """What the API server needs to talk to the kubelet: its client certificate, the
    CA the kubelet's serving certificate comes from, and the node's InternalIP."""
    return [
        f"--kubelet-client-certificate={pki_dir / 'apiserver-kubelet-client.crt'}",
        f"--kubelet-client-key={pki_dir / 'apiserver-kubelet-client.key'}",
        f"--kubelet-certificate-authority={pki_dir / 'ca.crt'}",
        "--kubelet-preferred-address-types=InternalIP",
    ]


def _kubeconfig(kube: RealKube, name: str, user: str) -> Path:
    return write_kubeconfig(
        kube.workdir / f"{name}.kubeconfig",
        kube.server,
        kube.pki.ca,
        user,
        cert=kube.pki.cert(name),
        key=kube.pki.key(name),
    )


def _insecure_ok(url: str) -> bool:
    """A component's own /healthz on loopback (its self-signed serving certificate)."""
    import warnings

    import urllib3

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        return local_get(url, timeout=5, verify=False).status_code == 200


def start_scheduler(kube: RealKube, peers: Peers, workdir: Path) -> Process:
    config = _kubeconfig(kube, "kube-scheduler", "system:kube-scheduler")
    port = free_port()
    argv = [
        peers.path("KUBE_SCHEDULER_125"),
        f"--kubeconfig={config}",
        f"--authentication-kubeconfig={config}",
        f"--authorization-kubeconfig={config}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={workdir / 'scheduler-certs'}",
        "--leader-elect=false",
        "--profiling=false",
        "--v=1",
    ]
    proc = Process("kube-scheduler", argv, workdir, bed="node")
    try:
        proc.wait_ready(lambda: _insecure_ok(f"https://127.0.0.1:{port}/healthz"))
    except BaseException:
        proc.stop()
        raise
    return proc


def make_cgroup_root() -> None:
    """The kubelet's ``cgroupRoot`` in every cgroup v1 hierarchy: it must exist, and
    a new cpuset cgroup has no CPUs or memory nodes until given its parent's."""
    for hierarchy in sorted(paths.CGROUP_MOUNT.iterdir()):
        if not (hierarchy / "cgroup.procs").exists() or hierarchy.name == "unified":
            continue
        d = hierarchy / paths.CGROUP
        d.mkdir(exist_ok=True)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if (d / name).exists() and not (d / name).read_text().strip():
                (d / name).write_text((hierarchy / name).read_text())


def kubelet_config(kube: RealKube, ranges: Ranges, port: int, healthz: int) -> dict[str, object]:
    root = paths.kubelet_dir()
    resolv = paths.root() / "resolv.conf"
    # Pods get no resolver: no DNS query of theirs leaves the host.
    resolv.write_text("# the node bed's pods resolve nothing\n")
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": ranges.node_ip,
        "port": port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz,
        "tlsCertFile": str(kube.pki.cert("kubelet-serving")),
        "tlsPrivateKeyFile": str(kube.pki.key("kubelet-serving")),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(kube.pki.ca)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{paths.CGROUP}",
        "cgroupsPerQOS": True,
        "failSwapOn": False,
        "resolvConf": str(resolv),
        "clusterDomain": "cluster.local",
        "makeIPTablesUtilChains": False,
        "volumePluginDir": str(root / "volume-plugins"),
        "staticPodPath": "",
        # Nothing can be pulled again here: never collect an image.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "serializeImagePulls": False,
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "nodeStatusUpdateFrequency": "5s",
        "shutdownGracePeriod": "0s",
    }


def start_kubelet(kube: RealKube, peers: Peers, ranges: Ranges, workdir: Path) -> Process:
    """The kubelet as ``system:node:hpnode``; ready when the Node is Ready."""
    config = _kubeconfig(kube, "kubelet", f"system:node:{NODE_NAME}")
    port, healthz = free_port(), free_port()
    config_file = paths.root() / "kubelet-config.json"
    config_file.write_text(json.dumps(kubelet_config(kube, ranges, port, healthz), indent=1))
    paths.kubelet_dir().mkdir(parents=True, exist_ok=True)
    make_cgroup_root()
    argv = [
        peers.path("KUBELET_125"),
        f"--config={config_file}",
        f"--kubeconfig={config}",
        f"--root-dir={paths.kubelet_dir()}",
        f"--cert-dir={paths.kubelet_dir() / 'pki'}",
        "--container-runtime=remote",
        f"--container-runtime-endpoint=unix://{paths.containerd_socket()}",
        f"--pod-infra-container-image={PAUSE.ref}",
        f"--node-ip={ranges.node_ip}",
        f"--hostname-override={NODE_NAME}",
        "--v=1",
    ]
    proc = Process("kubelet", argv, workdir, bed="node")

    def node_ready() -> bool:
        r = kube.request("GET", f"/api/v1/nodes/{NODE_NAME}", ok=(200, 404))
        if r.get("kind") != "Node":  # 404: not registered yet
            return False
        conditions = (r.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    try:
        proc.wait_ready(node_ready, 180)
    except BaseException:
        proc.stop()
        raise
    return proc


def start_kube_proxy(kube: RealKube, peers: Peers, ranges: Ranges, workdir: Path) -> Process:
    """kube-proxy in iptables mode; ready when it has synced the rules once (its
    /healthz answers 200 only after that)."""
    config = _kubeconfig(kube, "kube-proxy", "system:kube-proxy")
    healthz, metrics = free_port(), free_port()
    proxy_config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(config)},
        "hostnameOverride": NODE_NAME,
        "bindAddress": ranges.node_ip,
        "healthzBindAddress": f"127.0.0.1:{healthz}",
        "metricsBindAddress": f"127.0.0.1:{metrics}",
        "clusterCIDR": ranges.pod_cidr,
        "nodePortAddresses": [f"{ranges.node_ip}/32"],
        # 0: leave the host's nf_conntrack_max and conntrack timeouts as they are
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
        "iptables": {"masqueradeAll": False, "syncPeriod": "30s", "minSyncPeriod": "0s"},
    }
    config_file = paths.root() / "kube-proxy-config.json"
    config_file.write_text(json.dumps(proxy_config, indent=1))
    argv = [peers.path("KUBE_PROXY_125"), f"--config={config_file}", "--v=1"]
    proc = Process("kube-proxy", argv, workdir, bed="node")
    try:
        proc.wait_ready(lambda: local_get(f"http://127.0.0.1:{healthz}/healthz", timeout=5).ok)
    except BaseException:
        proc.stop()
        raise
    return proc

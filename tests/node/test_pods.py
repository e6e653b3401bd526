"""The node runs pods: the kubelet, containerd, runc, the CNI bridge and the images
built here, before any volume of ours is involved."""

from __future__ import annotations

import re

from testbeds.node import Node, cleanup, network

from .kubectl import NodeKubectl, pod


def test_a_pod_as_uid_1000_writes_to_an_emptydir(
    node: Node, kubectl: NodeKubectl, namespace: str
) -> None:
    script = (
        "id; echo written-by-the-pod > /data/f && cat /data/f; "
        "touch /cannot-write 2>/dev/null && echo ROOT-WRITABLE; ip addr show eth0 | grep inet"
    )
    kubectl.apply(
        {
            **pod(
                "writer",
                command=["sh", "-c", script],
                volumes=[{"name": "data", "emptyDir": {}}],
                mounts=[{"name": "data", "mountPath": "/data"}],
            ),
            "metadata": {"name": "writer", "namespace": namespace},
        }
    )
    done = kubectl.wait_pod_phase("writer", namespace, ("Succeeded", "Failed"))
    logs = kubectl.run("logs", "writer", "-n", namespace).stdout
    assert done["status"]["phase"] == "Succeeded", logs
    assert done["spec"]["nodeName"] == node.name  # placed by the real scheduler
    assert re.search(r"^uid=1000\b.*gid=1000\b", logs, re.M), logs
    assert "written-by-the-pod" in logs
    assert "ROOT-WRITABLE" not in logs  # readOnlyRootFilesystem held
    # its address came from host-local IPAM on the bed's pod range, through the bridge
    pod_ip = done["status"]["podIP"]
    assert pod_ip.startswith(node.ranges.pod_cidr.rsplit(".", 2)[0] + "."), pod_ip
    assert f"inet {pod_ip}/24" in logs
    assert network.BRIDGE in {line.split(":")[1].strip() for line in _links()}


def test_the_kubernetes_service_reaches_the_api_server_from_a_pod(
    node: Node, kubectl: NodeKubectl, namespace: str
) -> None:
    """kube-proxy's iptables rules carry the ``kubernetes`` Service's ClusterIP to the
    API server on the node's address (what in-cluster config dials)."""
    service = kubectl.get("service", "kubernetes", "default")
    assert service["spec"]["clusterIP"] == node.ranges.service_ip
    endpoints = kubectl.get("endpoints", "kubernetes", "default")
    (subset,) = endpoints["subsets"]
    assert [a["ip"] for a in subset["addresses"]] == [node.node_ip]
    # a TCP connection through the ClusterIP is what the Service must provide (busybox
    # nc exits 0 once connected and stdin is at its end)
    script = f"nc -w 5 {node.ranges.service_ip} 443 </dev/null && echo CONNECTED"
    kubectl.apply(
        {
            **pod("dialer", command=["sh", "-c", script]),
            "metadata": {"name": "dialer", "namespace": namespace},
        }
    )
    done = kubectl.wait_pod_phase("dialer", namespace, ("Succeeded", "Failed"))
    logs = kubectl.run("logs", "dialer", "-n", namespace).stdout
    assert done["status"]["phase"] == "Succeeded" and "CONNECTED" in logs, logs


def test_pods_reach_the_node_and_are_fenced_off_the_rest(
    node: Node, kubectl: NodeKubectl, namespace: str
) -> None:
    """A pod reaches the node's address (the API server's port). An address of the
    bed's /16 that nothing serves goes nowhere (the blackhole route, not the default
    route), and ``HPNODE-FORWARD``, first in FORWARD, drops whatever would be
    forwarded out of the bridge. (The test sends nothing off the bed to prove the
    fence: a broken fence would let that packet out.)"""
    port = node.kube.server.rsplit(":", 1)[1]
    unserved = node.ranges.service_ip.rsplit(".", 2)[0] + ".200.1"
    script = (
        f"nc -w 3 {node.node_ip} {port} </dev/null && echo NODE-OK; "
        f"nc -w 3 {unserved} 80 </dev/null && echo UNSERVED-ANSWERED || echo UNSERVED-DROPPED"
    )
    kubectl.apply(
        {
            **pod("dialer", command=["sh", "-c", script]),
            "metadata": {"name": "dialer", "namespace": namespace},
        }
    )
    kubectl.wait_pod_phase("dialer", namespace, ("Succeeded", "Failed"))
    logs = kubectl.run("logs", "dialer", "-n", namespace).stdout
    assert "NODE-OK" in logs and "UNSERVED-DROPPED" in logs, logs
    # (`ip route get` of such an address fails: "Invalid argument" for a blackhole)
    assert network.blackholes() == [node.ranges.block]
    assert network.sh("ip", "-4", "route", "get", unserved, check=False).returncode != 0
    forward = network.sh("iptables", "-w", "30", "-S", "FORWARD").stdout.splitlines()
    assert f"-A FORWARD -j {network.FORWARD_CHAIN}" in forward, forward
    chain = network.sh("iptables", "-w", "30", "-S", network.FORWARD_CHAIN).stdout
    assert f"-A {network.FORWARD_CHAIN} -i {network.BRIDGE} ! -o {network.BRIDGE} -j DROP" in chain


def test_what_the_bed_holds_is_visible_to_cleanup(node: Node) -> None:
    """While the bed runs, ``cleanup.leftovers()`` sees its mounts, links and rules
    (so after a killed run it finds them too); ``test_cleanup`` checks they go."""
    found = cleanup.leftovers()
    assert any(f.startswith("link ") and network.DUMMY in f for f in found), found
    assert any("KUBE-SERVICES" in f for f in found), found
    assert any(f.startswith("mount ") for f in found), found


def _links() -> list[str]:
    out = network.sh("ip", "-o", "link", "show").stdout
    return [line for line in out.splitlines() if ":" in line]

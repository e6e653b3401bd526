"""The storage network's exposure to tenant pods, and its remedy, are documented.

Hole 6 of issue 23: NFS-Ganesha exports every volume under ``/<volume name>`` and
believes the uid/gid a client claims, GIDs are handed out in order, and Gluster's own
ports answer its userspace client: any pod that can reach them can mount any
tenant's volume. docs/kubernetes-1.26-and-later.md only said to let the nodes reach
port 2049. Nothing in the controller can close this; the operator must, so the
documents must say so plainly and give a remedy that is checked here:

* the example NetworkPolicy is valid for Kubernetes 1.25 and for the newest schema
  kubernetes-validate has, selects every pod of the namespace, and lets no egress
  reach the storage network or any Gluster/NFS port;
* tenant namespaces get Pod Security ``restricted`` (no hostNetwork pods, which
  NetworkPolicy does not cover);
* both documents state that the GID is no boundary over NFS.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import major_minor

DOCS = Path(__file__).resolve().parents[2] / "docs"
SECURITY = DOCS / "security.md"
K8S_126 = DOCS / "kubernetes-1.26-and-later.md"
VERSIONS = sorted({"1.25", major_minor(kubernetes_validate.latest_version())})
STORAGE_NETWORK = ipaddress.ip_network("192.0.2.0/24")  # the example's placeholder
# Ports a tenant pod must not reach on any address: rpcbind, NFS, mountd, glusterd,
# Gluster's own NFS, and the brick range.
TCP_DENIED = [111, 2049, 20048, 24007, 24008, 38465, 38469, 49152, 55555, 60999]
UDP_DENIED = [111, 2049, 20048]
_YAML = re.compile(r"^```yaml\n(.*?)^```", re.S | re.M)


def _yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [
        doc
        for block in _YAML.findall(path.read_text())
        for doc in yaml.safe_load_all(block)
        if isinstance(doc, dict)
    ]


def _policy() -> dict[str, Any]:
    found = [d for d in _yaml_docs(SECURITY) if d.get("kind") == "NetworkPolicy"]
    assert len(found) == 1, "docs/security.md must give one example NetworkPolicy"
    return found[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_example_network_policy_is_valid(version: str) -> None:
    used = kubernetes_validate.validate(_policy(), version, strict=True)
    assert used == version


def _allows(
    policy: dict[str, Any], address: str, port: int, protocol: str, *, pod: bool = False
) -> bool:
    """Whether the policy lets a selected pod send to ``address:port``; ``pod``: the
    address is a pod's, which pod and namespace selectors match (whatever its IP: a
    hostNetwork Gluster pod has its node's)."""
    ip = ipaddress.ip_address(address)
    for rule in policy["spec"].get("egress") or []:
        ports = rule.get("ports")
        port_ok = not ports or any(
            p.get("protocol", "TCP") == protocol
            and int(p["port"]) <= port <= int(p.get("endPort", p["port"]))
            for p in ports
        )
        peers = rule.get("to")
        peer_ok = not peers
        for peer in peers or []:
            block = peer.get("ipBlock")
            if block is None:
                peer_ok = peer_ok or pod
                continue
            net = ipaddress.ip_network(block["cidr"])
            excluded = any(ip in ipaddress.ip_network(e) for e in block.get("except") or [])
            if ip.version == net.version and ip in net and not excluded:
                peer_ok = True
        if port_ok and peer_ok:
            return True
    return False


def test_the_example_network_policy_keeps_tenant_pods_off_storage() -> None:
    policy = _policy()
    spec = policy["spec"]
    assert spec["podSelector"] == {}, "it must select every pod of the namespace"
    assert "Egress" in spec["policyTypes"]
    storage = str(STORAGE_NETWORK.network_address + 10)
    for port in (22, 80, 443, 2049, 24007, 49152):
        assert not _allows(policy, storage, port, "TCP"), f"storage network, TCP {port}"
    for pod in (False, True):
        for port in TCP_DENIED:
            for where in ("203.0.113.7", storage):
                assert not _allows(policy, where, port, "TCP", pod=pod), f"TCP {port} {where}"
        for port in UDP_DENIED:
            assert not _allows(policy, "203.0.113.7", port, "UDP", pod=pod), f"UDP {port}"
    # Everything else stays reachable, outside the cluster and in it: DNS, HTTPS, a
    # database.
    for pod in (False, True):
        assert _allows(policy, "203.0.113.7", 53, "UDP", pod=pod)
        assert _allows(policy, "203.0.113.7", 443, "TCP", pod=pod)
        assert _allows(policy, "203.0.113.7", 5432, "TCP", pod=pod)


def test_tenant_namespaces_get_pod_security_restricted() -> None:
    namespaces = [d for d in _yaml_docs(SECURITY) if d.get("kind") == "Namespace"]
    assert namespaces, "docs/security.md must show a tenant Namespace"
    for version in VERSIONS:
        for namespace in namespaces:
            kubernetes_validate.validate(namespace, version, strict=True)
    labels = namespaces[0]["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert _policy()["metadata"]["namespace"] == namespaces[0]["metadata"]["name"]


@pytest.mark.parametrize("doc", [SECURITY, K8S_126], ids=lambda p: p.name)
def test_the_gid_is_said_to_be_no_boundary_over_nfs(doc: Path) -> None:
    text = re.sub(r"\s+", " ", doc.read_text())
    assert "Over NFS the PV's GID is no boundary" in text
    assert "NetworkPolicy" in text and "restricted" in text

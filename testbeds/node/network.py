"""The node bed's addresses and host network objects, and their removal.

Ranges are chosen after reading ``ip route`` (every table) and ``ip addr``: the
first /16 of ``CANDIDATES`` that overlaps nothing the host routes or holds. In it:

- ``10.N.255.1/24`` on ``hpnode0``, a bridge without ports (this kernel has no
  ``dummy`` links): the node's InternalIP, where the API server, the kubelet and
  Heketi serve. The rest of that /24 goes nowhere (no port, no neighbour answers):
  the mock Heketi's storage addresses live there.
- ``10.N.0.0/24``: pods, on the CNI bridge ``hpnode-br0`` (gateway ``10.N.0.1``).
- ``10.N.128.0/24``: Services (the ``kubernetes`` Service is ``10.N.128.1``).

Pods may reach the node's addresses and each other, nothing else: chain
``HPNODE-FORWARD`` (filter, first in FORWARD) drops whatever would be forwarded out of
the bridge, and a blackhole route for the /16 keeps any address of it that nothing
serves (a Service port without a rule, a storage address) off the default route. No
packet of the pods leaves through the host's own interface. No masquerading is set
up (the bridge plugin's ``ipMasq`` is off).
"""

from __future__ import annotations

import ipaddress
import json
import shlex
import subprocess
from dataclasses import dataclass

DUMMY = "hpnode0"
BRIDGE = "hpnode-br0"
FORWARD_CHAIN = "HPNODE-FORWARD"
CANDIDATES = tuple(f"10.{n}.0.0/16" for n in (213, 214, 215, 216, 217, 218))
HOST_NET = ipaddress.ip_network("192.0.2.0/24")  # the host's own network here


class NetworkUnavailable(RuntimeError):
    """No candidate range is free, or a command failed."""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and out.returncode != 0:
        raise NetworkUnavailable(f"{' '.join(argv)}: {out.stderr.strip() or out.stdout.strip()}")
    return out


@dataclass(frozen=True)
class Ranges:
    block: str  # the /16 everything below comes from

    @property
    def _net(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.block)

    def _addr(self, offset: int) -> str:
        return str(self._net.network_address + offset)

    @property
    def node_ip(self) -> str:
        return self._addr(255 * 256 + 1)

    @property
    def node_cidr(self) -> str:
        return f"{self._addr(255 * 256)}/24"

    @property
    def pod_cidr(self) -> str:
        return f"{self._addr(0)}/24"

    @property
    def pod_gateway(self) -> str:
        return self._addr(1)

    @property
    def service_cidr(self) -> str:
        return f"{self._addr(128 * 256)}/24"

    @property
    def service_ip(self) -> str:
        """The ``kubernetes`` Service's ClusterIP: the first of the range."""
        return self._addr(128 * 256 + 1)

    def storage_ips(self, n: int) -> list[str]:
        """Addresses for the mock Heketi's nodes: on ``hpnode0``'s /24, so nothing answers
        and nothing is sent off the host."""
        return [self._addr(255 * 256 + 11 + i) for i in range(n)]


def _host_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 destination the host routes (all tables) and every address it holds,
    except what the bed itself put there."""
    nets: list[ipaddress.IPv4Network] = [HOST_NET]
    routes = json.loads(sh("ip", "-j", "-4", "route", "show", "table", "all").stdout or "[]")
    for r in routes:
        dst = r.get("dst", "")
        if r.get("dev") in (DUMMY, BRIDGE) or dst in ("", "default"):
            continue
        if r.get("type") == "blackhole" and dst in CANDIDATES:
            continue  # the bed's own (a killed run's)
        try:
            nets.append(ipaddress.IPv4Network(dst, strict=False))
        except ValueError:
            continue
    links = json.loads(sh("ip", "-j", "-4", "addr").stdout or "[]")
    for link in links:
        if link.get("ifname") in (DUMMY, BRIDGE):
            continue
        for a in link.get("addr_info", []):
            nets.append(ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False))
    return [n for n in nets if not n.is_loopback]


def choose_ranges() -> Ranges:
    taken = _host_networks()
    for candidate in CANDIDATES:
        net = ipaddress.IPv4Network(candidate)
        if not any(net.overlaps(t) for t in taken):
            return Ranges(candidate)
    raise NetworkUnavailable(
        f"every candidate range ({', '.join(CANDIDATES)}) overlaps a route or address of "
        f"the host: {', '.join(map(str, taken))}"
    )


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return sh("iptables", "-w", "30", *args, check=check)


def set_up(ranges: Ranges) -> None:
    """The node's link with its address, and the forwarding fence."""
    if sh("ip", "link", "show", DUMMY, check=False).returncode != 0:
        sh("ip", "link", "add", DUMMY, "type", "bridge")
    sh("ip", "addr", "replace", f"{ranges.node_ip}/24", "dev", DUMMY)
    sh("ip", "link", "set", DUMMY, "up")
    if _iptables("-n", "-L", FORWARD_CHAIN, check=False).returncode != 0:
        _iptables("-N", FORWARD_CHAIN)
    _iptables("-F", FORWARD_CHAIN)
    # pods may talk to each other (bridged) and to the node (local delivery, not
    # forwarded): whatever else they send is dropped
    _iptables("-A", FORWARD_CHAIN, "-i", BRIDGE, "!", "-o", BRIDGE, "-j", "DROP")
    _iptables("-A", FORWARD_CHAIN, "-s", ranges.block, "!", "-o", BRIDGE, "-j", "DROP")
    # what is sent into the /16 but matches none of its routes (a Service address
    # without a kube-proxy rule, a storage address) must not take the default route
    sh("ip", "route", "replace", "blackhole", ranges.block)
    jump = ("FORWARD", "-j", FORWARD_CHAIN)
    if _iptables("-C", *jump, check=False).returncode != 0:
        _iptables("-I", "FORWARD", "1", "-j", FORWARD_CHAIN)


def veths_on_bridge() -> list[str]:
    links = json.loads(sh("ip", "-j", "link", "show", "master", BRIDGE, check=False).stdout or "[]")
    return [str(link["ifname"]) for link in links]


def tear_down() -> list[str]:
    """Remove the links and the chain (whatever of them exists); returns what went."""
    gone = []
    for veth in veths_on_bridge():
        if sh("ip", "link", "del", veth, check=False).returncode == 0:
            gone.append(f"link {veth}")
    for link in (BRIDGE, DUMMY):
        if sh("ip", "link", "del", link, check=False).returncode == 0:
            gone.append(f"link {link}")
    for block in blackholes():
        sh("ip", "route", "del", "blackhole", block, check=False)
        gone.append(f"route blackhole {block}")
    while _iptables("-D", "FORWARD", "-j", FORWARD_CHAIN, check=False).returncode == 0:
        gone.append(f"iptables FORWARD -j {FORWARD_CHAIN}")
    if _iptables("-n", "-L", FORWARD_CHAIN, check=False).returncode == 0:
        _iptables("-F", FORWARD_CHAIN, check=False)
        _iptables("-X", FORWARD_CHAIN, check=False)
        gone.append(f"iptables chain {FORWARD_CHAIN}")
    return gone


def remove_kube_chains() -> None:
    """Every rule that jumps to a KUBE-* chain, then those chains, in every table."""
    for table in ("filter", "nat", "mangle", "raw"):
        rules = _iptables("-t", table, "-S", check=False).stdout.splitlines()
        for rule in rules:
            words = rule.split()
            if words[:1] == ["-A"] and not words[1].startswith("KUBE-") and "KUBE-" in rule:
                _iptables("-t", table, "-D", *shlex.split(rule)[1:], check=False)
        chains = [r.split()[1] for r in rules if r.startswith("-N KUBE-")]
        for chain in chains:
            _iptables("-t", table, "-F", chain, check=False)
        for chain in chains:
            _iptables("-t", table, "-X", chain, check=False)


def blackholes() -> list[str]:
    """The bed's blackhole routes (one per candidate /16 it used)."""
    routes = json.loads(sh("ip", "-j", "-4", "route", "show", "type", "blackhole").stdout or "[]")
    return [r["dst"] for r in routes if r.get("dst") in CANDIDATES]


def leftover_rules() -> list[str]:
    """iptables rules (every table) that name the bed's chains or kube-proxy's."""
    found = []
    for table in ("filter", "nat", "mangle", "raw"):
        out = _iptables("-t", table, "-S", check=False).stdout
        found += [
            f"{table}: {line}"
            for line in out.splitlines()
            if "HPNODE" in line or "KUBE-" in line or BRIDGE in line or "CNI-" in line
        ]
    return found

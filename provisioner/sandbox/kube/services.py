"""Services as the real registry writes them: defaults and allocated cluster IPs.

A client waiting for a Service to be ready (``helm install --wait``) looks for its
``spec.clusterIP``; ``kubectl get svc`` shows it. The sandbox allocates addresses from
``SERVICE_RANGE`` (kube-apiserver's default ``--service-cluster-ip-range``) and node
ports from 30000-32767. Nothing routes to them: they are names, as everywhere in the
sandbox. An update that leaves the allocated values out keeps them, as the real
registry patches them in. A dry-run create shows the range's first address, as a
real server's dry run does (nothing is allocated).
"""

from __future__ import annotations

import ipaddress
import random
from typing import Any

from .store import Store

Obj = dict[str, Any]
SERVICE_RANGE = ipaddress.ip_network("10.96.0.0/12")
NODE_PORTS = range(30000, 32768)


def apply_defaults(spec: Obj) -> None:
    kind = spec.setdefault("type", "ClusterIP")
    if kind == "ExternalName":
        return
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "targetPort" not in port and "port" in port:
                port["targetPort"] = port["port"]
    spec.setdefault("sessionAffinity", "None")
    if kind in ("NodePort", "LoadBalancer"):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if kind == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    spec.setdefault("internalTrafficPolicy", "Cluster")


def _used(store: Store) -> tuple[set[str], set[int]]:
    ips: set[str] = set()
    ports: set[int] = set()
    for entry in store.snapshot("services")[1]:
        spec = entry.obj.get("spec") or {}
        ips.update(ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str))
        for port in spec.get("ports") or []:
            if isinstance(port, dict) and isinstance(port.get("nodePort"), int):
                ports.add(port["nodePort"])
    return ips, ports


def allocate(store: Store, obj: Obj, *, dry_run: bool) -> None:
    """Give a new Service its cluster IP (unless headless or ExternalName) and node
    ports; the IP family fields follow (store lock held)."""
    obj["status"] = {"loadBalancer": {}}  # a create's status is the registry's
    spec = obj.get("spec")
    if not isinstance(spec, dict) or spec.get("type") == "ExternalName":
        return
    used_ips, used_ports = _used(store)
    if not spec.get("clusterIP"):
        if dry_run:
            spec["clusterIP"] = str(SERVICE_RANGE.network_address)
        else:
            hosts = SERVICE_RANGE.num_addresses - 2
            while True:  # the range is large; a free address is found at once
                candidate = str(SERVICE_RANGE.network_address + random.randint(1, hosts))
                if candidate not in used_ips:
                    spec["clusterIP"] = candidate
                    break
    spec.setdefault("clusterIPs", [spec["clusterIP"]])
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    if spec.get("type") in ("NodePort", "LoadBalancer"):
        free = [p for p in NODE_PORTS if p not in used_ports]
        for port in spec.get("ports") or []:
            if isinstance(port, dict) and not port.get("nodePort"):
                port["nodePort"] = free.pop(random.randrange(len(free)))


def keep_allocated(old: Obj, new: Obj) -> None:
    """What an update leaves out of the allocated values is kept."""
    before, after = old.get("spec") or {}, new.get("spec")
    if not isinstance(after, dict) or after.get("type") != before.get("type"):
        return
    for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        if key in before and not after.get(key):
            after[key] = before[key]
    old_ports = {
        (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
        for p in before.get("ports") or []
        if isinstance(p, dict)
    }
    for port in after.get("ports") or []:
        if isinstance(port, dict) and not port.get("nodePort"):
            kept = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
            if kept:
                port["nodePort"] = kept

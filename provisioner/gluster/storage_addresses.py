"""The Gluster nodes' storage addresses must be IPs, and we check before the create.

A glusterfs PV mounts through an Endpoints object, and Endpoints accept IP addresses
only: the API server answers 422 to a host name. Heketi's topology may name nodes by
host name, and Heketi lists those names as the volume's mount hosts. Found after the
create, that would leave a volume that can never be mounted and a claim retrying for
ever; the in-tree provisioner read each node's storage address and refused anything
but an IP. So before a create we read the storage addresses of the clusters a class
may place volumes on (its ``clusterid`` list, or every cluster) and refuse, naming the
node and the address, when one is not an IP. No name is resolved here: that would
make the outcome depend on this pod's resolver, not on what the kubelets will see.

The addresses change only when an operator changes Heketi's topology, so they are
kept for ``ttl`` seconds per server and cluster list: one list, one GET per cluster
and one per node every five minutes, not per claim. One reader fills the cache while
the others wait for it: a burst of claims at start-up would otherwise each read the
whole topology (measured: 16 workers, 80 requests instead of 5).
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from heketi_client import HeketiClient

__all__ = ["DEFAULT_TTL", "StorageAddresses", "is_ip", "not_ips"]

DEFAULT_TTL = 300.0
_MAX_ENTRIES = 64  # per-server state stays bounded whatever the classes name


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def not_ips(hosts: Sequence[str]) -> list[str]:
    return [h for h in hosts if not is_ip(h)]


class StorageAddresses:
    """Per (server, clusters): the first node whose storage address is not an IP."""

    def __init__(
        self, *, ttl: float = DEFAULT_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._reading = threading.Lock()  # one topology read at a time
        self._seen: OrderedDict[tuple[str, tuple[str, ...]], tuple[float, str | None]] = (
            OrderedDict()
        )

    def problem(self, url: str, client: HeketiClient, clusters: Sequence[str]) -> str | None:
        """Why volumes on these clusters cannot be mounted through Endpoints, or None.
        Raises ``HeketiError`` when Heketi cannot be read (the caller reports it)."""
        key = (url, tuple(clusters))
        fresh = self._fresh(key)
        if fresh is not None:
            return fresh[0]
        with self._reading:
            fresh = self._fresh(key)  # filled while this thread waited
            if fresh is not None:
                return fresh[0]
            now = self.clock()
            answer = self._look(client, clusters)
            with self._lock:  # stored before the next reader looks
                self._seen[key] = (now, answer)
                self._seen.move_to_end(key)
                while len(self._seen) > _MAX_ENTRIES:
                    self._seen.popitem(last=False)
        return answer

    def _fresh(self, key: tuple[str, tuple[str, ...]]) -> tuple[str | None] | None:
        """(answer,) when the cache holds a fresh one for ``key``, else None."""
        with self._lock:
            found = self._seen.get(key)
            if found is not None and self.clock() - found[0] < self.ttl:
                return (found[1],)
        return None

    @staticmethod
    def _look(client: HeketiClient, clusters: Sequence[str]) -> str | None:
        for cluster_id in clusters or client.list_clusters():
            cluster = client.get_cluster(cluster_id)
            if not clusters and not cluster.file:
                continue  # Heketi places no file volume there unless a class names it
            for node_id in cluster.nodes:
                node = client.get_node(node_id)
                bad = not_ips(node.storage_hostnames)
                if bad:
                    return (
                        f"Heketi node {node.id} (cluster {cluster_id}) has storage address "
                        f'"{bad[0][:64]}", which is not an IP address: the Endpoints a '
                        "glusterfs volume mounts through accept only IPs. Set the node's "
                        "storage hostname to its IP in Heketi's topology"
                    )
        return None

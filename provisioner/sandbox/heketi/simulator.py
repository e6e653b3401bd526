"""`HeketiSimulator`: the public face of the package (see docs/interfaces.md)."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from .api import HeketiAPI
from .auth import Authenticator
from .blockvolumes import DEFAULT_BLOCK_HOSTING_VOLUME_SIZE
from .faults import OP_ROUTES, Faults
from .operations import Operations
from .server import Frontend, Listener, RequestRecord
from .state import KIB_PER_GIB, STATES, Database
from .views import block_volume_json, device_json, volume_json

Latency = float | Mapping[str, float]


class HeketiSimulator:
    """A Heketi v10 REST server on loopback, backed by an in-memory topology.

    Topology at start: `clusters` clusters of `nodes` nodes with `devices_per_node`
    devices of `device_size_gb` GiB. Node `n` (1-based) of cluster `c` (1-based) is
    `node<c>-<n>.gluster.local` / `10.0.<c>.<n>`, in zone `(n-1) % 3 + 1`.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        admin_key: str | None = None,
        user_key: str | None = None,
        auth: bool = True,
        clusters: int = 1,
        nodes: int = 3,
        devices_per_node: int = 2,
        device_size_gb: int = 500,
        latency: Latency = 0.0,
        max_inflight: int = 8,
        retry_after: int | None = None,
        seed: int | None = None,
        block_hosting_volume_size: int = DEFAULT_BLOCK_HOSTING_VOLUME_SIZE,
        auto_create_block_hosting_volume: bool = True,
    ) -> None:
        if auth and not admin_key:
            # Heketi refuses to start with JWT on and no admin key.
            raise ValueError("auth is on but no admin_key was given (or pass auth=False)")
        self.auth_enabled = auth
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._db = Database(self._rng)
        self._latency: Latency = latency
        self._device_size_gb = device_size_gb
        self.faults = Faults()
        self._ops = Operations(max_inflight)
        self._api = HeketiAPI(
            db=self._db,
            lock=self._lock,
            operations=self._ops,
            faults=self.faults,
            latency_for=self._latency_for,
            rng=self._rng,
            retry_after=retry_after,
            block_hosting_volume_size=block_hosting_volume_size,
            auto_create_block_hosting_volume=auto_create_block_hosting_volume,
        )
        authenticator = Authenticator(admin_key=admin_key, user_key=user_key) if auth else None
        self._frontend = Frontend(self._api, authenticator, self.faults)
        self._listener = Listener(host, port, self._frontend)
        self._host = host
        for c in range(1, clusters + 1):
            cluster_id = self.add_cluster()
            for n in range(1, nodes + 1):
                self.add_node(
                    cluster_id,
                    zone=(n - 1) % 3 + 1,
                    manage=f"node{c}-{n}.gluster.local",
                    storage=f"10.0.{c}.{n}",
                    devices=devices_per_node,
                )

    def __repr__(self) -> str:
        state = "up" if self._listener.running else "down"
        return f"HeketiSimulator(url={self.url!r}, {state}, auth={self.auth_enabled})"

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> str:
        self._listener.open()
        return self.url

    def stop(self) -> None:
        self._listener.close()
        self._ops.cancel_all()

    def __enter__(self) -> HeketiSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._listener.port}"

    @property
    def port(self) -> int:
        return self._listener.port

    def down(self) -> None:
        """Close the listening socket and cut open connections: connection refused.

        State and in-flight operations are kept, as across a network outage."""
        self._listener.close()

    def up(self) -> None:
        """Listen again on the same port."""
        self._listener.open()

    # -- behaviour knobs -------------------------------------------------------------------

    def _latency_for(self, op: str) -> float:
        latency = self._latency
        if isinstance(latency, Mapping):
            return float(latency.get(op, 0.0))
        return float(latency)

    def set_latency(self, latency: Latency) -> None:
        unknown = set(latency) - set(OP_ROUTES) if isinstance(latency, Mapping) else set()
        if unknown:
            raise ValueError(f"unknown operations: {sorted(unknown)}")
        self._latency = latency

    def set_keys(self, *, admin_key: str, user_key: str | None = None) -> None:
        """Rotate the keys, as an operator does by restarting Heketi with a new
        ``jwt`` section: from now on only tokens signed with these pass."""
        if self._frontend.auth is None:
            raise ValueError("this simulator runs without authentication")
        self._frontend.auth = Authenticator(admin_key=admin_key, user_key=user_key)

    def set_block_hosting(
        self, *, size_gb: int | None = None, auto_create: bool | None = None
    ) -> None:
        """Heketi's ``block_hosting_volume_size`` and ``auto_create_block_hosting_volume``."""
        service = self._api.block_volumes
        if size_gb is not None:
            if size_gb < 1:
                raise ValueError("block hosting volume size must be at least 1 GiB")
            service.hosting_size = size_gb
        if auto_create is not None:
            service.auto_create = auto_create

    def set_max_inflight(self, value: int) -> None:
        self._ops.max_inflight = value

    def complete_pending(self) -> int:
        """Finish every operation waiting on its latency now; returns how many."""
        return self._ops.run_pending_now()

    def operations(self) -> dict[str, int]:
        return self._ops.stats()

    # -- topology for tests ----------------------------------------------------------------

    def add_cluster(self, *, block: bool = True, file: bool = True) -> str:
        with self._lock:
            return self._db.add_cluster(block=block, file=file).id

    def add_node(
        self,
        cluster_id: str,
        *,
        zone: int = 1,
        manage: str | None = None,
        storage: str | None = None,
        devices: int = 0,
        device_size_gb: int | None = None,
    ) -> str:
        with self._lock:
            count = len(self._db.nodes) + 1
            node = self._db.add_node(
                cluster_id,
                zone=zone,
                manage=manage or f"node{count}.gluster.local",
                storage=storage or f"10.1.0.{count}",
            )
            for _ in range(devices):
                self.add_device(node.id, size_gb=device_size_gb)
            return node.id

    def add_device(
        self, node_id: str, *, size_gb: int | None = None, name: str | None = None
    ) -> str:
        size = self._device_size_gb if size_gb is None else size_gb
        with self._lock:
            return self._db.add_device(node_id, size_kib=size * KIB_PER_GIB, name=name).id

    def set_node_state(self, node_id: str, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}")
        with self._lock:
            self._db.nodes[node_id].state = state

    def set_device_state(self, device_id: str, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}")
        with self._lock:
            self._db.devices[device_id].state = state

    def cluster_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._db.clusters)

    def node_ids(self, cluster_id: str) -> list[str]:
        with self._lock:
            return sorted(self._db.clusters[cluster_id].nodes)

    def device_ids(self, node_id: str) -> list[str]:
        with self._lock:
            return list(self._db.nodes[node_id].devices)

    def device(self, device_id: str) -> dict[str, Any]:
        with self._lock:
            return device_json(self._db, self._db.devices[device_id])

    # -- introspection -----------------------------------------------------------------------

    def volumes(self) -> list[dict[str, Any]]:
        """Heketi volume JSON of every finished volume (in-flight ones excluded)."""
        with self._lock:
            return [
                volume_json(self._db, v)
                for v in sorted(self._db.volumes.values(), key=lambda v: v.id)
                if v.visible
            ]

    def block_volumes(self) -> list[dict[str, Any]]:
        """Heketi block volume JSON of every finished block volume."""
        with self._lock:
            return [
                block_volume_json(b)
                for b in sorted(self._db.block_volumes.values(), key=lambda b: b.id)
                if b.visible
            ]

    @property
    def requests(self) -> list[RequestRecord]:
        with self._frontend._records_lock:
            return list(self._frontend.records)

    def request_counts(self) -> Counter[str]:
        """Keyed like `"POST /volumes 202"`, `"GET /queue/{id} 303"`, or
        `"POST /volumes dropped"` for a connection closed without an answer."""
        return Counter(r.key for r in self.requests)

    def reset_requests(self) -> None:
        with self._frontend._records_lock:
            self._frontend.records.clear()

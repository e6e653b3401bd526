"""The REST surface without the transport: (method, path, body) → Response.

Authentication and fault injection sit in the server in front of this; keeping them
out makes every handler here a plain function of the database.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from .blockvolumes import DEFAULT_BLOCK_HOSTING_VOLUME_SIZE, BlockVolumeService
from .bodies import Unparsable, decode_body
from .faults import Faults
from .operations import Operations
from .responses import ID_NOT_FOUND, Response, error, json_response, redirect, text_response
from .routing import match
from .state import Database
from .views import cluster_json, device_json, node_json
from .volumes import VolumeService

INVALID_PATH = "Invalid path or request"
PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
HELLO = "text/plain; charset=UTF-8"  # set by Heketi's handler itself (upper case)


class HeketiAPI:
    def __init__(
        self,
        *,
        db: Database,
        lock: threading.RLock,
        operations: Operations,
        faults: Faults,
        latency_for: Callable[[str], float],
        rng: random.Random,
        retry_after: int | None = None,
        block_hosting_volume_size: int = DEFAULT_BLOCK_HOSTING_VOLUME_SIZE,
        auto_create_block_hosting_volume: bool = True,
    ) -> None:
        self.db = db
        self.lock = lock
        self.ops = operations
        self.volumes = VolumeService(
            db=db,
            lock=lock,
            operations=operations,
            faults=faults,
            latency_for=latency_for,
            rng=rng,
            retry_after=retry_after,
        )
        self.block_volumes = BlockVolumeService(
            db=db,
            lock=lock,
            operations=operations,
            faults=faults,
            volumes=self.volumes,
            rng=rng,
            hosting_size=block_hosting_volume_size,
            auto_create=auto_create_block_hosting_volume,
        )
        self._routes = self._handlers()

    def dispatch(self, method: str, path: str, body: bytes) -> Response:
        found = match(method, path)
        if found.template is None:
            return error(404, INVALID_PATH)
        if not found.method_ok:
            # gorilla/mux answers a known path with the wrong method this way.
            return Response(405, b"", {})
        # Ids are stored lowercase; an uppercase hex id routes but is never found.
        handler = self._routes[f"{method} {found.template}"]
        return handler(found.id or "", body, method)

    def _handlers(self) -> dict[str, Callable[[str, bytes, str], Response]]:
        v = self.volumes
        bv = self.block_volumes
        return {
            "GET /hello": lambda i, b, m: text_response("Hello from Heketi", HELLO),
            "GET /metrics": lambda i, b, m: text_response(self.metrics(), PROMETHEUS),
            "GET /operations": lambda i, b, m: json_response(self.ops.stats()),
            "GET /clusters": lambda i, b, m: self.list_clusters(),
            "POST /clusters": lambda i, b, m: self.create_cluster(b),
            "GET /clusters/{id}": lambda i, b, m: self.get_cluster(i),
            "GET /nodes/{id}": lambda i, b, m: self.get_node(i),
            "GET /devices/{id}": lambda i, b, m: self.get_device(i),
            "GET /volumes": lambda i, b, m: v.list_ids(),
            "POST /volumes": lambda i, b, m: v.create(b),
            "GET /volumes/{id}": lambda i, b, m: v.info(i),
            "DELETE /volumes/{id}": lambda i, b, m: v.delete(i),
            "POST /volumes/{id}/expand": lambda i, b, m: v.expand(i, b),
            "POST /volumes/{id}/clone": lambda i, b, m: v.clone(i, b),
            "GET /blockvolumes": lambda i, b, m: bv.list_ids(),
            "POST /blockvolumes": lambda i, b, m: bv.create(b),
            "GET /blockvolumes/{id}": lambda i, b, m: bv.info(i),
            "DELETE /blockvolumes/{id}": lambda i, b, m: bv.delete(i),
            "GET /queue/{id}": lambda i, b, m: self.poll(i, m),
        }

    # -- topology -----------------------------------------------------------------------

    def list_clusters(self) -> Response:
        with self.lock:
            return json_response({"clusters": sorted(self.db.clusters)})

    def create_cluster(self, body: bytes) -> Response:
        try:
            flags = decode_body(body, {"block": "bool", "file": "bool"})
        except Unparsable:
            return error(422, "request unable to be parsed")
        with self.lock:
            cluster = self.db.add_cluster(block=flags["block"], file=flags["file"])
            return json_response(cluster_json(self.db, cluster), 201)

    def get_cluster(self, cluster_id: str) -> Response:
        with self.lock:
            cluster = self.db.clusters.get(cluster_id)
            if cluster is None:
                return error(404, ID_NOT_FOUND)
            return json_response(cluster_json(self.db, cluster))

    def get_node(self, node_id: str) -> Response:
        with self.lock:
            node = self.db.nodes.get(node_id)
            if node is None:
                return error(404, ID_NOT_FOUND)
            return json_response(node_json(self.db, node))

    def get_device(self, device_id: str) -> Response:
        with self.lock:
            device = self.db.devices.get(device_id)
            if device is None:
                return error(404, ID_NOT_FOUND)
            return json_response(device_json(self.db, device))

    # -- queue ------------------------------------------------------------------------------

    def poll(self, op_id: str, method: str) -> Response:
        entry = self.ops.poll(op_id)
        if entry is None:
            return error(404, ID_NOT_FOUND)
        if not entry.done:
            return Response(200, b"", {"X-Pending": "true"})
        if entry.error is not None:
            return error(500, entry.error)
        if entry.location is not None:
            return redirect(entry.location, 303, method)
        return Response(204, b"", {})

    # -- metrics ----------------------------------------------------------------------------

    def metrics(self) -> str:
        """A few of Heketi's gauges, enough for dashboards and smoke tests."""
        lines = [
            "# HELP heketi_up Is heketi running?",
            "# TYPE heketi_up gauge",
            "heketi_up 1",
            "# HELP heketi_cluster_count Number of clusters",
            "# TYPE heketi_cluster_count gauge",
        ]
        with self.lock:
            lines.append(f"heketi_cluster_count {len(self.db.clusters)}")
            lines += ["# TYPE heketi_nodes_count gauge"]
            for cluster in sorted(self.db.clusters.values(), key=lambda c: c.id):
                lines.append(f'heketi_nodes_count{{cluster="{cluster.id}"}} {len(cluster.nodes)}')
            lines += ["# TYPE heketi_volumes_count gauge"]
            for cluster in sorted(self.db.clusters.values(), key=lambda c: c.id):
                visible = sum(1 for v in cluster.volumes if self.db.volumes[v].visible)
                lines.append(f'heketi_volumes_count{{cluster="{cluster.id}"}} {visible}')
            for metric, attr in (
                ("heketi_device_size", "total_kib"),
                ("heketi_device_free", "free_kib"),
                ("heketi_device_used", "used_kib"),
            ):
                lines.append(f"# TYPE {metric} gauge")
                for device in sorted(self.db.devices.values(), key=lambda d: d.id):
                    node = self.db.nodes[device.node_id]
                    labels = (
                        f'cluster="{node.cluster_id}",device="{device.name}",'
                        f'hostname="{node.manage}"'
                    )
                    lines.append(f"{metric}{{{labels}}} {getattr(device, attr)}")
        stats = self.ops.stats()
        lines += [
            "# TYPE heketi_operations_in_flight gauge",
            f"heketi_operations_in_flight {stats['in_flight']}",
        ]
        return "\n".join(lines) + "\n"

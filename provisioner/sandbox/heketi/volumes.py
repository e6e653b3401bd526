"""Volume create, delete, expand and clone: Heketi's Build → 202 → Exec → queue.

Everything that can be refused is decided before the 202 (Heketi's "Build" step,
inside one database transaction, here one lock). The background step only flips the
pending mark — or, when a fault says so, rolls the change back.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable

from .allocator import AllocationError, Layout, check_cluster, place_bricks
from .bodies import (
    CreateRequest,
    Invalid,
    Unparsable,
    minimum_size_error,
    parse_clone,
    parse_create,
    parse_expand,
)
from .faults import OP_ROUTES, Faults
from .operations import Operations
from .responses import (
    CONFLICT,
    ID_NOT_FOUND,
    Response,
    accepted,
    error,
    json_response,
)
from .state import Brick, Database, Volume
from .views import volume_json

BUSY = "Server busy. Retry operation later."
HEKETI_DB_VOLUME = "heketidbstorage"
MULTI_CLUSTER_PREFIX = "Unable to create volume on any cluster:"


def layout_of(volume: Volume) -> Layout:
    durability = volume.durability
    if durability["type"] == "replicate":
        width = durability["replicate"].get("replica") or 2
        return Layout(width, 1, volume.snapshot_factor)
    if durability["type"] == "disperse":
        data = durability["disperse"]["data"]
        return Layout(data + durability["disperse"]["redundancy"], data, volume.snapshot_factor)
    return Layout(1, 1, volume.snapshot_factor)


def clusters_error(errors: dict[str, str]) -> str:
    """One cluster tried: its reason alone; several: one line per cluster."""
    if len(errors) == 1:
        return next(iter(errors.values()))
    lines = [MULTI_CLUSTER_PREFIX] + [f"Cluster {c}: {reason}" for c, reason in errors.items()]
    return "\n".join(lines)


class VolumeService:
    def __init__(
        self,
        *,
        db: Database,
        lock: threading.RLock,
        operations: Operations,
        faults: Faults,
        latency_for: Callable[[str], float],
        rng: random.Random,
        retry_after: int | None,
    ) -> None:
        self.db = db
        self.lock = lock
        self.ops = operations
        self.faults = faults
        self.latency_for = latency_for
        self.rng = rng
        self.retry_after = retry_after

    # -- shared --------------------------------------------------------------------------

    def _busy(self) -> Response:
        response = error(429, BUSY)
        if self.retry_after is not None:
            response.headers["Retry-After"] = str(self.retry_after)
        return response

    def _start(
        self,
        op: str,
        op_id: str,
        effect: Callable[[], str | None],
        rollback: Callable[[], None],
    ) -> Response:
        """Run the background step after the op's latency; the caller holds a slot."""
        route = OP_ROUTES[op]
        fail_text = self.faults.take_async_failure(route)
        lost = self.faults.take_lost_result(route)
        misdirect = self.faults.take_misdirect(route)
        self.ops.open(op_id)

        def step() -> None:
            location: str | None = None
            try:
                with self.lock:
                    if fail_text is None:
                        location = effect()
                    else:
                        rollback()
            finally:
                self.ops.release()
            if location is not None and misdirect is not None:
                location = misdirect  # a hostile Heketi: "done, see that volume"
            self.ops.complete(op_id, location=location, error=fail_text, lost=lost)

        delay = self.latency_for(op)
        if delay > 0:
            self.ops.schedule(op_id, delay, step)
        else:
            step()
        return accepted(op_id)

    def _hosts(self, cluster_id: str) -> list[str]:
        """Heketi's getHostsFromCluster: every node of the cluster, in the cluster's
        order, whatever its state (an offline node stays a volfile server)."""
        return [self.db.nodes[n].storage for n in self.db.clusters[cluster_id].nodes]

    # -- reads ---------------------------------------------------------------------------

    def list_ids(self) -> Response:
        with self.lock:
            ids = sorted(v.id for v in self.db.volumes.values() if v.visible)
        return json_response({"volumes": ids})

    def info(self, volume_id: str) -> Response:
        with self.lock:
            volume = self.db.volumes.get(volume_id)
            if volume is None or not volume.visible:
                return error(404, ID_NOT_FOUND)
            return json_response(volume_json(self.db, volume))

    # -- create ---------------------------------------------------------------------------

    def create(self, body: bytes) -> Response:
        try:
            request = parse_create(body)
        except Unparsable:
            return error(422, "request unable to be parsed")
        except Invalid as exc:
            return error(400, str(exc))
        with self.lock:
            if not self.db.clusters:
                return error(400, "No clusters configured")
            for cluster_id in request.clusters:
                if cluster_id not in self.db.clusters:
                    return error(400, f"Cluster id {cluster_id} not found")
        too_small = minimum_size_error(request)
        if too_small:
            return error(400, too_small)
        if not self.ops.acquire():
            return self._busy()
        with self.lock:
            volume_or_error = self._allocate(request)
            if isinstance(volume_or_error, str):
                self.ops.release()
                return error(500, f"Failed to allocate new volume: {volume_or_error}")
            volume = volume_or_error

            def effect() -> str:
                volume.pending_op = None
                return f"/volumes/{volume.id}"

            def rollback() -> None:
                self.db.remove_volume(volume.id)

            return self._start("volume_create", volume.pending_op or "", effect, rollback)

    def _allocate(self, request: CreateRequest) -> Volume | str:
        volume_id = self.db.new_id()
        name = request.name or f"vol_{volume_id}"
        layout = Layout(request.set_width, request.data_bricks, request.snapshot_factor)
        candidates = list(dict.fromkeys(request.clusters)) or sorted(self.db.clusters)
        errors: dict[str, str] = {}
        for cluster_id in candidates:
            try:
                check_cluster(self.db, cluster_id, block=request.block, name=name)
                bricks = place_bricks(
                    self.db,
                    cluster_id,
                    volume_id=volume_id,
                    size_gib=request.size,
                    layout=layout,
                    rng=self.rng,
                )
            except AllocationError as exc:
                errors[cluster_id] = str(exc)
                continue
            volume = Volume(
                id=volume_id,
                name=name,
                size=request.size,
                cluster_id=cluster_id,
                durability=request.durability,
                gid=request.gid,
                options=request.options,
                block=request.block,
                snapshot_enable=request.snapshot_enable,
                snapshot_factor=request.snapshot_factor,
                mount_hosts=self._hosts(cluster_id),
                pending_op=self.db.new_id(),
            )
            self.db.add_volume(volume)
            for brick in bricks:
                self.db.add_brick(brick)
            return volume
        return clusters_error(errors)

    # -- delete ---------------------------------------------------------------------------

    def delete(self, volume_id: str) -> Response:
        with self.lock:
            volume = self.db.volumes.get(volume_id)
            if volume is None:
                return error(404, ID_NOT_FOUND)
            if volume.name == HEKETI_DB_VOLUME:
                return error(409, "Cannot delete volume containing the Heketi database")
        if not self.ops.acquire():
            return self._busy()
        with self.lock:
            volume = self.db.volumes.get(volume_id)
            if volume is None or volume.pending_op is not None:
                self.ops.release()
                if volume is None:
                    return error(404, ID_NOT_FOUND)
                return error(500, f"Failed to set up volume delete: {CONFLICT}")
            op_id = self.db.new_id()
            volume.pending_op = op_id
            target = volume

            def effect() -> None:
                self.db.remove_volume(target.id)

            def rollback() -> None:
                target.pending_op = None

            return self._start("volume_delete", op_id, effect, rollback)

    # -- expand ---------------------------------------------------------------------------

    def expand(self, volume_id: str, body: bytes) -> Response:
        try:
            expand_size = parse_expand(body)
        except Unparsable:
            return error(422, "request unable to be parsed")
        except Invalid as exc:
            return error(400, str(exc))
        with self.lock:
            if volume_id not in self.db.volumes:
                return error(404, ID_NOT_FOUND)
        if not self.ops.acquire():
            return self._busy()
        with self.lock:
            volume = self.db.volumes.get(volume_id)
            failure = None
            if volume is None:
                self.ops.release()
                return error(404, ID_NOT_FOUND)
            if volume.pending_op is not None:
                failure = CONFLICT
            else:
                try:
                    bricks = place_bricks(
                        self.db,
                        volume.cluster_id,
                        volume_id=volume.id,
                        size_gib=expand_size,
                        layout=layout_of(volume),
                        rng=self.rng,
                        existing_bricks=len(volume.bricks),
                    )
                except AllocationError as exc:
                    failure = str(exc)
            if failure is not None:
                self.ops.release()
                return error(500, f"Failed to allocate volume expansion: {failure}")
            for brick in bricks:
                self.db.add_brick(brick)
            op_id = self.db.new_id()
            volume.pending_op = op_id
            target = volume

            def effect() -> str:
                target.size += expand_size
                target.pending_op = None
                return f"/volumes/{target.id}"

            def rollback() -> None:
                for brick in bricks:
                    self.db.remove_brick(brick.id)
                target.pending_op = None

            return self._start("volume_expand", op_id, effect, rollback)

    # -- clone ----------------------------------------------------------------------------

    def clone(self, volume_id: str, body: bytes) -> Response:
        try:
            name = parse_clone(body)
        except Unparsable:
            return error(422, "request unable to be parsed")
        except Invalid as exc:
            return error(400, str(exc))
        with self.lock:
            origin = self.db.volumes.get(volume_id)
            if origin is None or not origin.visible:
                return error(404, ID_NOT_FOUND)
        if not self.ops.acquire():
            return self._busy()
        with self.lock:
            origin = self.db.volumes.get(volume_id)
            if origin is None or not origin.visible:
                self.ops.release()
                return error(500, f"Failed clone volume {volume_id}: {CONFLICT}")
            clone = self._make_clone(origin, name)

            def effect() -> str:
                clone.pending_op = None
                return f"/volumes/{clone.id}"

            def rollback() -> None:
                self.db.remove_volume(clone.id)

            return self._start("volume_clone", clone.pending_op or "", effect, rollback)

    def _make_clone(self, origin: Volume, name: str) -> Volume:
        """A snapshot clone: same layout, new brick ids, no new space (names unchecked)."""
        clone_id = self.db.new_id()
        clone = Volume(
            id=clone_id,
            name=name or f"vol_{clone_id}",
            size=origin.size,
            cluster_id=origin.cluster_id,
            durability=origin.durability,
            gid=origin.gid,
            options=list(origin.options),
            block=origin.block,
            snapshot_enable=origin.snapshot_enable,
            snapshot_factor=origin.snapshot_factor,
            mount_hosts=list(origin.mount_hosts),
            pending_op=self.db.new_id(),
        )
        self.db.add_volume(clone)
        for brick_id in list(origin.bricks):
            source = self.db.bricks[brick_id]
            self.db.add_brick(
                Brick(
                    id=self.db.new_id(),
                    device_id=source.device_id,
                    node_id=source.node_id,
                    volume_id=clone_id,
                    size_kib=source.size_kib,
                    used_kib=0,
                )
            )
        return clone

"""Brick placement modelled on Heketi's simple allocator.

The point is not byte-exact placement but the same observable consequences: which
requests get `No space`, how many bricks a volume has, that replicas sit on distinct
nodes, and how much device space each brick consumes (so free space reported by
`GET /devices/{id}` moves the way it does on a real server).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from .state import KIB_PER_GIB, Brick, Database, Device

EXTENT_KIB = 4 * 1024
METADATA_CAP_KIB = 16 * KIB_PER_GIB
MIN_BRICK_KIB = KIB_PER_GIB
MAX_BRICK_KIB = 4 * 1024 * KIB_PER_GIB
MAX_BRICKS_PER_VOLUME = 32
MAX_VOLUMES_PER_CLUSTER = 1000
MAX_BRICKS = "Maximum number of bricks reached."
NO_SPACE = "No space"


class AllocationError(Exception):
    """A reason Heketi would give for not placing a volume in one cluster."""


@dataclass(frozen=True)
class Layout:
    """What placement needs to know about a volume's durability."""

    set_width: int
    data_bricks: int  # size divisor inside a set (disperse data count, else 1)
    snapshot_factor: float


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


def brick_space_kib(brick_kib: int, snapshot_factor: float = 1.0) -> int:
    """Device space a brick takes: thin pool sized for snapshots, plus pool metadata.

    Both the pool and its metadata are whole LVM extents; metadata is 0.5% of the pool
    with a 16 GiB ceiling.
    """
    pool = _round_up(int(brick_kib * snapshot_factor), EXTENT_KIB)
    metadata = min(_round_up(math.ceil(pool * 5 / 1000), EXTENT_KIB), METADATA_CAP_KIB)
    return pool + metadata


def device_ring(db: Database, cluster_id: str) -> list[Device]:
    """Usable devices in an order that alternates zones, then nodes, then devices.

    Walking such a ring from any point spreads consecutive bricks across failure
    domains, which is why Heketi builds it this way.
    """
    by_zone: dict[int, list[str]] = {}
    for node_id in sorted(db.clusters[cluster_id].nodes):
        node = db.nodes[node_id]
        if node.state == "online":
            by_zone.setdefault(node.zone, []).append(node_id)
    node_order: list[str] = []
    zones = [by_zone[z] for z in sorted(by_zone)]
    for i in range(max((len(z) for z in zones), default=0)):
        node_order.extend(z[i] for z in zones if i < len(z))
    ring: list[Device] = []
    depth = max((len(db.nodes[n].devices) for n in node_order), default=0)
    for i in range(depth):
        for node_id in node_order:
            devices = db.nodes[node_id].devices
            if i < len(devices) and db.devices[devices[i]].state == "online":
                ring.append(db.devices[devices[i]])
    return ring


def check_cluster(db: Database, cluster_id: str, *, block: bool, name: str | None) -> None:
    """Cluster-level refusals, checked before any placement is tried."""
    cluster = db.clusters[cluster_id]
    if not cluster.block and not cluster.file:
        raise AllocationError("Cluster has disabled all volume types")
    if (block and not cluster.block) or (not block and not cluster.file):
        raise AllocationError("Cluster does not support requested volume type")
    if len(cluster.volumes) >= MAX_VOLUMES_PER_CLUSTER:
        raise AllocationError(
            f"Cluster has {len(cluster.volumes)} volumes and limit is {MAX_VOLUMES_PER_CLUSTER}"
        )
    if name is not None and name in db.names_in_cluster(cluster_id):
        raise AllocationError(f"Volume name '{name}' already in use")
    if not cluster.nodes:
        raise AllocationError("No nodes in cluster")
    if not device_ring(db, cluster_id):
        raise AllocationError("No online storage devices in cluster")


def _place_set(
    ring: list[Device], start: int, width: int, need_kib: int, reserved: dict[str, int]
) -> list[Device] | None:
    chosen: list[Device] = []
    used_nodes: set[str] = set()
    for step in range(len(ring)):
        device = ring[(start + step) % len(ring)]
        if device.node_id in used_nodes:
            continue
        if device.free_kib - reserved.get(device.id, 0) > need_kib:
            chosen.append(device)
            used_nodes.add(device.node_id)
            if len(chosen) == width:
                return chosen
    return None


def place_bricks(
    db: Database,
    cluster_id: str,
    *,
    volume_id: str,
    size_gib: int,
    layout: Layout,
    rng: random.Random,
    existing_bricks: int = 0,
) -> list[Brick]:
    """Bricks for `size_gib` more GiB of a volume, or AllocationError(`No space`).

    Tries 1, 2, 4, 8… brick sets. Nothing is written to the database: the caller adds
    the bricks in the same locked step, so the reservation is atomic.
    ``existing_bricks`` (an expand): the volume's bricks count towards the limit of
    32, and reaching it ends the search with Heketi's expand answer
    `Maximum number of bricks reached.` (checked against the real Heketi v10.3.0).
    """
    ring = device_ring(db, cluster_id)
    sets = 1
    while True:
        brick_kib = size_gib * KIB_PER_GIB // sets // layout.data_bricks
        if brick_kib < MIN_BRICK_KIB:
            raise AllocationError(NO_SPACE)
        if sets * layout.set_width + existing_bricks > MAX_BRICKS_PER_VOLUME:
            raise AllocationError(MAX_BRICKS if existing_bricks else NO_SPACE)
        if brick_kib <= MAX_BRICK_KIB and ring:
            bricks = _try_layout(db, ring, volume_id, sets, brick_kib, layout, rng)
            if bricks is not None:
                return bricks
        sets *= 2


def _try_layout(
    db: Database,
    ring: list[Device],
    volume_id: str,
    sets: int,
    brick_kib: int,
    layout: Layout,
    rng: random.Random,
) -> list[Brick] | None:
    need = brick_space_kib(brick_kib, layout.snapshot_factor)
    reserved: dict[str, int] = {}
    bricks: list[Brick] = []
    for _ in range(sets):
        chosen = _place_set(ring, rng.randrange(len(ring)), layout.set_width, need, reserved)
        if chosen is None:
            return None
        for device in chosen:
            reserved[device.id] = reserved.get(device.id, 0) + need
            bricks.append(
                Brick(
                    id=db.new_id(),
                    device_id=device.id,
                    node_id=device.node_id,
                    volume_id=volume_id,
                    size_kib=brick_kib,
                    used_kib=need,
                )
            )
    return bricks

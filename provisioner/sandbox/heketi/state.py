"""The simulator's database: clusters, nodes, devices, bricks and volumes.

Plain mutable records guarded by one lock owned by the simulator; nothing here locks
on its own, so callers can group several changes into one atomic step, as Heketi does
inside a single database transaction.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

KIB_PER_GIB = 1024 * 1024
BRICK_ROOT = "/var/lib/heketi/mounts"
STATES = ("online", "offline", "failed")


@dataclass
class Brick:
    id: str
    device_id: str
    node_id: str
    volume_id: str
    size_kib: int
    # Space taken from the device (thin pool + metadata); 0 for clone bricks, which
    # are snapshots sharing the origin's pool.
    used_kib: int

    @property
    def path(self) -> str:
        return f"{BRICK_ROOT}/vg_{self.device_id}/brick_{self.id}/brick"


@dataclass
class Device:
    id: str
    name: str
    node_id: str
    total_kib: int
    used_kib: int = 0
    state: str = "online"
    bricks: list[str] = field(default_factory=list)

    @property
    def free_kib(self) -> int:
        return self.total_kib - self.used_kib


@dataclass
class Node:
    id: str
    cluster_id: str
    zone: int
    manage: str
    storage: str
    state: str = "online"
    devices: list[str] = field(default_factory=list)


@dataclass
class Cluster:
    id: str
    block: bool = True
    file: bool = True
    nodes: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)


@dataclass
class Volume:
    id: str
    name: str
    size: int
    cluster_id: str
    durability: dict[str, Any]
    gid: int
    options: list[str]
    block: bool
    snapshot_enable: bool
    snapshot_factor: float
    mount_hosts: list[str]
    bricks: list[str] = field(default_factory=list)
    # Id of the operation that is creating this volume; a volume with a pending
    # create is invisible to GET, as in Heketi.
    pending_op: str | None = None
    # Block-hosting volumes only (``block``): GiB still free for block volumes, GiB
    # held back, and the ids of the block volumes inside.
    block_free: int = 0
    block_reserved: int = 0
    block_volumes: list[str] = field(default_factory=list)

    @property
    def visible(self) -> bool:
        return self.pending_op is None


@dataclass
class BlockVolume:
    """A gluster-block LUN inside a block-hosting volume (``hosting_id``)."""

    id: str
    name: str
    size: int
    cluster_id: str
    hosting_id: str
    hacount: int
    auth: bool
    hosts: list[str]
    iqn: str
    username: str = ""
    password: str = ""
    clusters: list[str] = field(default_factory=list)
    pending_op: str | None = None

    @property
    def visible(self) -> bool:
        return self.pending_op is None


class Database:
    """All records by id, plus the id generator (seedable so tests are repeatable)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.clusters: dict[str, Cluster] = {}
        self.nodes: dict[str, Node] = {}
        self.devices: dict[str, Device] = {}
        self.bricks: dict[str, Brick] = {}
        self.volumes: dict[str, Volume] = {}
        self.block_volumes: dict[str, BlockVolume] = {}

    def new_id(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"

    # -- topology building ---------------------------------------------------------

    def add_cluster(self, *, block: bool = True, file: bool = True) -> Cluster:
        cluster = Cluster(id=self.new_id(), block=block, file=file)
        self.clusters[cluster.id] = cluster
        return cluster

    def add_node(self, cluster_id: str, *, zone: int, manage: str, storage: str) -> Node:
        cluster = self.clusters[cluster_id]
        node = Node(
            id=self.new_id(), cluster_id=cluster_id, zone=zone, manage=manage, storage=storage
        )
        self.nodes[node.id] = node
        cluster.nodes.append(node.id)
        return node

    def add_device(self, node_id: str, *, size_kib: int, name: str | None = None) -> Device:
        node = self.nodes[node_id]
        if name is None:
            name = "/dev/sd" + chr(ord("b") + len(node.devices) % 25)
        device = Device(id=self.new_id(), name=name, node_id=node_id, total_kib=size_kib)
        self.devices[device.id] = device
        node.devices.append(device.id)
        return device

    # -- bricks and volumes ---------------------------------------------------------

    def add_brick(self, brick: Brick) -> None:
        self.bricks[brick.id] = brick
        device = self.devices[brick.device_id]
        device.bricks.append(brick.id)
        device.used_kib += brick.used_kib
        self.volumes[brick.volume_id].bricks.append(brick.id)

    def remove_brick(self, brick_id: str) -> None:
        brick = self.bricks.pop(brick_id)
        device = self.devices.get(brick.device_id)
        if device is not None:
            device.bricks.remove(brick_id)
            device.used_kib -= brick.used_kib
        volume = self.volumes.get(brick.volume_id)
        if volume is not None and brick_id in volume.bricks:
            volume.bricks.remove(brick_id)

    def add_volume(self, volume: Volume) -> None:
        self.volumes[volume.id] = volume
        self.clusters[volume.cluster_id].volumes.append(volume.id)

    def remove_volume(self, volume_id: str) -> None:
        volume = self.volumes[volume_id]
        for brick_id in list(volume.bricks):
            self.remove_brick(brick_id)
        del self.volumes[volume_id]
        cluster = self.clusters.get(volume.cluster_id)
        if cluster is not None:
            cluster.volumes.remove(volume_id)

    def names_in_cluster(self, cluster_id: str) -> set[str]:
        """Names taken in a cluster; volumes still being created count, as in Heketi."""
        return {self.volumes[v].name for v in self.clusters[cluster_id].volumes}

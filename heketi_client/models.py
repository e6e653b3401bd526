"""Frozen dataclasses for volumes: what we ask Heketi for and what it describes.

``to_json`` reproduces Heketi's own encoding (Go ``encoding/json`` with its
``omitempty`` rules: zero ``gid``, false ``block``, empty option lists and zero
durability fields are left out; ``replicate``/``disperse`` objects are always there), so
``X.from_json(d).to_json() == d`` for any ``d`` Heketi produced. Collections are
tuples, and maps are sorted tuples of pairs, so that every model is hashable.
Sizes: volumes in GiB, bricks in KiB, as Heketi counts them. The topology models
(clusters, nodes, devices, bricks) live in ``_topology`` and are re-exported here.

``from_json`` checks every field's type (and that ids are ids) and raises
``MalformedResponse`` naming the field, rather than trusting Heketi's answer to have
the shape its TypedDict promises; see ``_fields``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, cast

from heketi_client._block import BlockVolumeCreateRequest, BlockVolumeInfo
from heketi_client._fields import Fields, is_id
from heketi_client._jsontypes import BlockInfoJSON, DurabilityJSON, VolumeCreateJSON, VolumeJSON
from heketi_client._topology import BrickInfo, ClusterInfo, DeviceInfo, NodeInfo, Pairs, pairs

__all__ = [
    "BlockHostingInfo",
    "BlockVolumeCreateRequest",
    "BlockVolumeInfo",
    "BrickInfo",
    "ClusterInfo",
    "DeviceInfo",
    "Durability",
    "NodeInfo",
    "VolumeCreateRequest",
    "VolumeInfo",
]

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")
"""Heketi's (and Gluster's) rule for volume names."""

MAX_GID = 2147483646
"""Heketi answers 400 for any gid above this (it says "2**32" but checks 2**31 - 1)."""


def _number(value: float) -> float | int:
    """Go prints float32 1.0 as ``1``; keep integral factors integral on the wire."""
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class Durability:
    """How a volume survives the loss of bricks; 0 means "not given" (Heketi's zero)."""

    kind: str = "none"
    replica: int = 0
    data: int = 0
    redundancy: int = 0

    @classmethod
    def replicate(cls, replica: int = 3) -> Durability:
        if replica < 1:
            raise ValueError(f"replica count must be at least 1, got {replica}")
        return cls("replicate", replica=replica)

    @classmethod
    def disperse(cls, data: int, redundancy: int) -> Durability:
        if data < 1 or redundancy < 1:
            raise ValueError(
                f"disperse needs positive data and redundancy, got {data}+{redundancy}"
            )
        return cls("disperse", data=data, redundancy=redundancy)

    @classmethod
    def none(cls) -> Durability:
        return cls("none")

    def __str__(self) -> str:
        """The StorageClass ``volumetype`` spelling, for messages."""
        if self.kind == "replicate":
            return f"replicate:{self.replica}" if self.replica else "replicate"
        if self.kind == "disperse":
            return f"disperse:{self.data}:{self.redundancy}"
        return self.kind or "none"

    @classmethod
    def from_json(cls, data: DurabilityJSON) -> Durability:
        return cls._read(Fields(data))

    @classmethod
    def _read(cls, f: Fields) -> Durability:
        replicate = f.obj("replicate", required=False)
        disperse = f.obj("disperse", required=False)
        return cls(
            kind=f.text("type", ""),
            replica=replicate.integer("replica", 0, minimum=0),
            data=disperse.integer("data", 0, minimum=0),
            redundancy=disperse.integer("redundancy", 0, minimum=0),
        )

    def to_json(self) -> DurabilityJSON:
        out: DurabilityJSON = {}
        if self.kind:
            out["type"] = self.kind
        out["replicate"] = {"replica": self.replica} if self.replica else {}
        out["disperse"] = {}
        if self.data:
            out["disperse"]["data"] = self.data
        if self.redundancy:
            out["disperse"]["redundancy"] = self.redundancy
        return out


@dataclass(frozen=True)
class VolumeCreateRequest:
    """What to create. Checks the rules Heketi would check, to fail before the call.

    The default durability is ``replicate:3`` (the StorageClass default), not Heketi's
    own default of ``none``, which would lose data with any one brick.
    """

    size: int
    name: str | None = None
    clusters: tuple[str, ...] = ()
    durability: Durability = field(default_factory=Durability.replicate)
    gid: int | None = None
    gluster_volume_options: tuple[str, ...] = ()
    snapshot_factor: float | None = None

    def __post_init__(self) -> None:
        # Accept lists from callers but store tuples, so the request stays hashable.
        object.__setattr__(self, "clusters", tuple(self.clusters))
        object.__setattr__(self, "gluster_volume_options", tuple(self.gluster_volume_options))
        if isinstance(self.size, bool) or self.size < 1:
            raise ValueError(f"size must be at least 1 GiB, got {self.size!r}")
        if self.name is not None and not NAME_PATTERN.match(self.name):
            raise ValueError(f"name {self.name!r} must match {NAME_PATTERN.pattern}")
        if self.gid is not None and not 0 <= self.gid <= MAX_GID:
            raise ValueError(f"gid must be within 0..{MAX_GID}, got {self.gid}")
        if self.snapshot_factor is not None and not 1 <= self.snapshot_factor <= 100:
            raise ValueError(f"snapshot factor must be within 1..100, got {self.snapshot_factor}")
        for cluster in self.clusters:
            if not is_id(cluster):
                # Heketi does not check them, but an unknown one fails the whole create.
                raise ValueError(
                    f"cluster id {cluster!r} must be 32 lowercase hexadecimal characters"
                )

    @classmethod
    def from_json(cls, data: VolumeCreateJSON) -> VolumeCreateRequest:
        f = Fields(data)
        snapshot = f.obj("snapshot", required=False)
        enabled = snapshot.flag("enable", False)
        return cls(
            size=f.integer("size"),
            name=f.text("name", "") or None,
            clusters=f.idents("clusters"),
            durability=Durability._read(f.obj("durability", required=False)),
            gid=f.integer("gid") if f.has("gid") else None,
            gluster_volume_options=f.texts("glustervolumeoptions"),
            snapshot_factor=snapshot.number("factor") if enabled else None,
        )

    def to_json(self) -> VolumeCreateJSON:
        out: VolumeCreateJSON = {"size": self.size}
        if self.clusters:
            out["clusters"] = list(self.clusters)
        if self.name is not None:
            out["name"] = self.name
        out["durability"] = self.durability.to_json()
        if self.gid is not None:
            out["gid"] = self.gid
        if self.gluster_volume_options:
            out["glustervolumeoptions"] = list(self.gluster_volume_options)
        if self.snapshot_factor is not None:
            out["snapshot"] = {"enable": True, "factor": _number(self.snapshot_factor)}
        return out


@dataclass(frozen=True, kw_only=True)
class BlockHostingInfo:
    """``blockinfo``: only meaningful for block-hosting volumes (usually all empty)."""

    free_size: int = 0
    reserved_size: int = 0
    block_volumes: tuple[str, ...] = ()
    restriction: str = ""

    @classmethod
    def from_json(cls, data: BlockInfoJSON) -> BlockHostingInfo:
        return cls._read(Fields(data))

    @classmethod
    def _read(cls, f: Fields) -> BlockHostingInfo:
        return cls(
            free_size=f.integer("freesize", 0, minimum=0),
            reserved_size=f.integer("reservedsize", 0, minimum=0),
            block_volumes=f.idents("blockvolume"),
            restriction=f.text("restriction", ""),
        )

    def to_json(self) -> BlockInfoJSON:
        out: BlockInfoJSON = {}
        if self.free_size:
            out["freesize"] = self.free_size
        if self.reserved_size:
            out["reservedsize"] = self.reserved_size
        if self.block_volumes:
            out["blockvolume"] = list(self.block_volumes)
        if self.restriction:
            out["restriction"] = self.restriction
        return out


_BACKUP = "backup-volfile-servers"


@dataclass(frozen=True, kw_only=True)
class VolumeInfo:
    """A volume as ``GET /volumes/{id}`` describes it.

    ``mount_device`` is ``<first host>:<name>``; ``backup_volfile_servers`` is the
    ``backup-volfile-servers`` mount option split on commas. ``gid`` 0 means none.
    """

    id: str
    name: str
    size: int
    cluster: str
    durability: Durability
    gid: int = 0
    snapshot_enable: bool = False
    snapshot_factor: float = 1.0
    mount_hosts: tuple[str, ...] = ()
    mount_device: str = ""
    backup_volfile_servers: tuple[str, ...] = ()
    gluster_volume_options: tuple[str, ...] = ()
    bricks: tuple[BrickInfo, ...] = ()
    block: bool = False
    block_info: BlockHostingInfo = field(default_factory=BlockHostingInfo)
    other_mount_options: Pairs = ()

    @classmethod
    def from_json(cls, data: VolumeJSON) -> VolumeInfo:
        f = Fields(data)
        gluster = f.obj("mount").obj("glusterfs")
        options = gluster.text_map("options")
        backup = options.pop(_BACKUP, "")
        snapshot = f.obj("snapshot", required=False)
        return cls(
            id=f.ident("id"),
            name=f.text("name"),
            size=f.integer("size", minimum=0),
            cluster=f.ident("cluster"),
            durability=Durability._read(f.obj("durability", required=False)),
            gid=f.integer("gid", 0, minimum=0),
            snapshot_enable=snapshot.flag("enable", False),
            snapshot_factor=snapshot.number("factor", 1),
            mount_hosts=gluster.texts("hosts"),
            mount_device=gluster.text("device", ""),
            backup_volfile_servers=tuple(h for h in backup.split(",") if h),
            gluster_volume_options=f.texts("glustervolumeoptions"),
            bricks=tuple(BrickInfo._read(b) for b in f.objs("bricks")),
            block=f.flag("block", False),
            block_info=BlockHostingInfo._read(f.obj("blockinfo", required=False)),
            other_mount_options=pairs(options),
        )

    def to_json(self) -> VolumeJSON:
        # Built in Heketi's field order, so that even the serialised text matches.
        out: dict[str, Any] = {"size": self.size, "name": self.name}
        out["durability"] = self.durability.to_json()
        if self.gid:
            out["gid"] = self.gid
        if self.gluster_volume_options:
            out["glustervolumeoptions"] = list(self.gluster_volume_options)
        if self.block:
            out["block"] = True
        out["snapshot"] = {"enable": self.snapshot_enable, "factor": _number(self.snapshot_factor)}
        out["id"] = self.id
        out["cluster"] = self.cluster
        options = {**dict(self.other_mount_options), _BACKUP: ",".join(self.backup_volfile_servers)}
        out["mount"] = {
            "glusterfs": {
                "hosts": list(self.mount_hosts),
                "device": self.mount_device,
                "options": dict(sorted(options.items())),
            }
        }
        out["blockinfo"] = self.block_info.to_json()
        out["bricks"] = [b.to_json() for b in self.bricks]
        return cast(VolumeJSON, out)

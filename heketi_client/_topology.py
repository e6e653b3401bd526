"""Frozen dataclasses for the storage topology: clusters, nodes, devices, bricks.

Same rules as ``models``: ``to_json`` writes Heketi's own encoding (field order and
``omitempty`` included), maps become sorted tuples of pairs so that every model is
hashable. Device and brick sizes are in KiB. ``from_json`` checks types and ids
(``MalformedResponse`` otherwise), as in ``models``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from heketi_client._fields import Fields
from heketi_client._jsontypes import BrickJSON, ClusterJSON, DeviceJSON, NodeJSON

Pairs = tuple[tuple[str, str], ...]


def pairs(mapping: Mapping[str, str] | None) -> Pairs:
    """A JSON map as a hashable, ordered value."""
    return tuple(sorted((mapping or {}).items()))


@dataclass(frozen=True, kw_only=True)
class BrickInfo:
    """One brick; ``size`` in KiB."""

    id: str
    path: str
    device: str
    node: str
    volume: str
    size: int

    @classmethod
    def from_json(cls, data: BrickJSON) -> BrickInfo:
        return cls._read(Fields(data))

    @classmethod
    def _read(cls, f: Fields) -> BrickInfo:
        return cls(
            id=f.ident("id"),
            path=f.text("path"),
            device=f.ident("device"),
            node=f.ident("node"),
            volume=f.ident("volume"),
            size=f.integer("size", minimum=0),
        )

    def to_json(self) -> BrickJSON:
        return {
            "id": self.id,
            "path": self.path,
            "device": self.device,
            "node": self.node,
            "volume": self.volume,
            "size": self.size,
        }


@dataclass(frozen=True, kw_only=True)
class DeviceInfo:
    """A device; ``total``/``free``/``used`` in KiB."""

    id: str
    name: str
    state: str
    total: int
    free: int
    used: int
    bricks: tuple[BrickInfo, ...] = ()
    tags: Pairs = ()
    paths: tuple[str, ...] = ()
    pv_uuid: str = ""

    @classmethod
    def from_json(cls, data: DeviceJSON) -> DeviceInfo:
        return cls._read(Fields(data))

    @classmethod
    def _read(cls, f: Fields) -> DeviceInfo:
        storage = f.obj("storage")
        return cls(
            id=f.ident("id"),
            name=f.text("name"),
            state=f.text("state"),
            total=storage.integer("total", minimum=0),
            free=storage.integer("free", minimum=0),
            used=storage.integer("used", minimum=0),
            bricks=tuple(BrickInfo._read(b) for b in f.objs("bricks")),
            tags=pairs(f.text_map("tags")),
            paths=f.texts("paths"),
            pv_uuid=f.text("pv_uuid", ""),
        )

    def to_json(self) -> DeviceJSON:
        out: dict[str, Any] = {"name": self.name}
        if self.tags:
            out["tags"] = dict(self.tags)
        out["storage"] = {"total": self.total, "free": self.free, "used": self.used}
        out["id"] = self.id
        if self.paths:
            out["paths"] = list(self.paths)
        if self.pv_uuid:
            out["pv_uuid"] = self.pv_uuid
        out["state"] = self.state
        out["bricks"] = [b.to_json() for b in self.bricks]
        return cast(DeviceJSON, out)


@dataclass(frozen=True, kw_only=True)
class NodeInfo:
    """A storage node; ``storage_hostnames`` are what clients mount from."""

    id: str
    cluster: str
    zone: int
    manage_hostnames: tuple[str, ...]
    storage_hostnames: tuple[str, ...]
    state: str
    devices: tuple[DeviceInfo, ...] = ()
    tags: Pairs = ()

    @classmethod
    def from_json(cls, data: NodeJSON) -> NodeInfo:
        f = Fields(data)
        hostnames = f.obj("hostnames")
        return cls(
            id=f.ident("id"),
            cluster=f.ident("cluster"),
            zone=f.integer("zone"),
            manage_hostnames=hostnames.texts("manage"),
            storage_hostnames=hostnames.texts("storage"),
            state=f.text("state"),
            devices=tuple(DeviceInfo._read(d) for d in f.objs("devices")),
            tags=pairs(f.text_map("tags")),
        )

    def to_json(self) -> NodeJSON:
        out: dict[str, Any] = {
            "zone": self.zone,
            "hostnames": {
                "manage": list(self.manage_hostnames),
                "storage": list(self.storage_hostnames),
            },
            "cluster": self.cluster,
        }
        if self.tags:
            out["tags"] = dict(self.tags)
        out["id"] = self.id
        out["state"] = self.state
        out["devices"] = [d.to_json() for d in self.devices]
        return cast(NodeJSON, out)


@dataclass(frozen=True, kw_only=True)
class ClusterInfo:
    """A cluster: ids of its nodes and volumes, and which volume kinds it accepts."""

    id: str
    nodes: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    block: bool = False
    file: bool = False
    block_volumes: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: ClusterJSON) -> ClusterInfo:
        f = Fields(data)
        return cls(
            id=f.ident("id"),
            nodes=f.idents("nodes"),
            volumes=f.idents("volumes"),
            block=f.flag("block", False),
            file=f.flag("file", False),
            block_volumes=f.idents("blockvolumes"),
        )

    def to_json(self) -> ClusterJSON:
        return {
            "id": self.id,
            "nodes": list(self.nodes),
            "volumes": list(self.volumes),
            "block": self.block,
            "file": self.file,
            "blockvolumes": list(self.block_volumes),
        }

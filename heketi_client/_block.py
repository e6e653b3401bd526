"""Block volumes (gluster-block LUNs inside a block-hosting volume), as Heketi has them.

Kept apart from ``models`` (file volumes) because they share nothing but ids: a block
volume has no bricks, no durability and no gid, and what a consumer needs from it is
an iSCSI target (hosts, IQN, LUN) and, with ``auth``, CHAP credentials.

``BlockVolumeInfo`` keeps the CHAP password out of its ``repr``: a log line or an
exception that prints the model must never carry it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from heketi_client._fields import Fields, is_id
from heketi_client._jsontypes import BlockVolumeCreateJSON, BlockVolumeJSON

__all__ = ["BlockVolumeCreateRequest", "BlockVolumeInfo"]

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True)
class BlockVolumeCreateRequest:
    """What to create; checks Heketi's own rules first, so that bad input fails here."""

    size: int
    name: str | None = None
    clusters: tuple[str, ...] = ()
    hacount: int | None = None
    auth: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "clusters", tuple(self.clusters))
        if isinstance(self.size, bool) or self.size < 1:
            raise ValueError(f"size must be at least 1 GiB, got {self.size!r}")
        if self.name is not None and (not self.name or set(self.name) - _NAME_CHARS):
            raise ValueError(f"block volume name {self.name!r} must match ^[a-zA-Z0-9_-]+$")
        if self.hacount is not None and (isinstance(self.hacount, bool) or self.hacount < 1):
            raise ValueError(f"hacount must be at least 1, got {self.hacount!r}")
        for cluster in self.clusters:
            if not is_id(cluster):
                raise ValueError(
                    f"cluster id {cluster!r} must be 32 lowercase hexadecimal characters"
                )

    def to_json(self) -> BlockVolumeCreateJSON:
        out: BlockVolumeCreateJSON = {"size": self.size}
        if self.clusters:
            out["clusters"] = list(self.clusters)
        if self.name is not None:
            out["name"] = self.name
        if self.hacount is not None:
            out["hacount"] = self.hacount
        if self.auth:
            out["auth"] = True
        return out


@dataclass(frozen=True, kw_only=True)
class BlockVolumeInfo:
    """A block volume as ``GET /blockvolumes/{id}`` describes it.

    ``hosts`` are the iSCSI portals (storage addresses of the nodes exporting it),
    ``iqn``/``lun`` the target. ``username``/``password`` are empty without auth.
    """

    id: str
    name: str
    size: int
    hosts: tuple[str, ...]
    iqn: str
    lun: int = 0
    username: str = ""
    password: str = field(default="", repr=False)
    hacount: int = 0
    auth: bool = False
    cluster: str = ""
    block_hosting_volume: str = ""
    clusters: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: BlockVolumeJSON) -> BlockVolumeInfo:
        f = Fields(data)
        target = f.obj("blockvolume")
        cluster = f.text("cluster", "")
        hosting = f.text("blockhostingvolume", "")
        if cluster:
            cluster = f.ident("cluster")
        if hosting:
            hosting = f.ident("blockhostingvolume")
        return cls(
            id=f.ident("id"),
            name=f.text("name"),
            size=f.integer("size", minimum=0),
            hosts=target.texts("hosts"),
            iqn=target.text("iqn", ""),
            lun=target.integer("lun", 0, minimum=0),
            username=target.text("username", ""),
            password=target.text("password", ""),
            hacount=f.integer("hacount", 0, minimum=0),
            auth=f.flag("auth", False),
            cluster=cluster,
            block_hosting_volume=hosting,
            clusters=f.idents("clusters"),
        )

    def to_json(self) -> BlockVolumeJSON:
        out: dict[str, Any] = {"size": self.size}
        if self.clusters:
            out["clusters"] = list(self.clusters)
        out["name"] = self.name
        if self.hacount:
            out["hacount"] = self.hacount
        if self.auth:
            out["auth"] = True
        out["id"] = self.id
        out["blockvolume"] = {
            "hosts": list(self.hosts),
            "iqn": self.iqn,
            "lun": self.lun,
            "username": self.username,
            "password": self.password,
        }
        if self.cluster:
            out["cluster"] = self.cluster
        if self.block_hosting_volume:
            out["blockhostingvolume"] = self.block_hosting_volume
        return cast(BlockVolumeJSON, out)

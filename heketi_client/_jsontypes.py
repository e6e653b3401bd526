"""The raw JSON shapes Heketi sends and accepts, as TypedDicts.

They mirror heketi v10's Go structs: keys marked ``omitempty`` there are the optional
keys here (split into a required base and a ``total=False`` subclass, which works on
Python 3.10 without ``NotRequired``). The dataclasses in ``models`` are built from
these and turn back into exactly these.
"""

from __future__ import annotations

from typing import TypedDict


class ReplicateJSON(TypedDict, total=False):
    replica: int


class DisperseJSON(TypedDict, total=False):
    data: int
    redundancy: int


class DurabilityJSON(TypedDict, total=False):
    type: str
    replicate: ReplicateJSON
    disperse: DisperseJSON


class SnapshotJSON(TypedDict):
    enable: bool
    factor: float


class _VolumeCreateRequired(TypedDict):
    size: int


class VolumeCreateJSON(_VolumeCreateRequired, total=False):
    name: str
    clusters: list[str]
    durability: DurabilityJSON
    gid: int
    glustervolumeoptions: list[str]
    block: bool
    snapshot: SnapshotJSON


class BrickJSON(TypedDict):
    id: str
    path: str
    device: str
    node: str
    volume: str
    size: int


class GlusterMountJSON(TypedDict):
    hosts: list[str]
    device: str
    options: dict[str, str]


class MountJSON(TypedDict):
    glusterfs: GlusterMountJSON


class BlockInfoJSON(TypedDict, total=False):
    freesize: int
    reservedsize: int
    blockvolume: list[str]
    restriction: str


class _VolumeRequired(TypedDict):
    size: int
    name: str
    durability: DurabilityJSON
    snapshot: SnapshotJSON
    id: str
    cluster: str
    mount: MountJSON
    bricks: list[BrickJSON]


class VolumeJSON(_VolumeRequired, total=False):
    gid: int
    glustervolumeoptions: list[str]
    block: bool
    blockinfo: BlockInfoJSON


class StorageJSON(TypedDict):
    total: int
    free: int
    used: int


class _DeviceRequired(TypedDict):
    name: str
    storage: StorageJSON
    id: str
    state: str
    bricks: list[BrickJSON]


class DeviceJSON(_DeviceRequired, total=False):
    tags: dict[str, str]
    paths: list[str]
    pv_uuid: str


class HostnamesJSON(TypedDict):
    manage: list[str]
    storage: list[str]


class _NodeRequired(TypedDict):
    zone: int
    hostnames: HostnamesJSON
    cluster: str
    id: str
    state: str
    devices: list[DeviceJSON]


class NodeJSON(_NodeRequired, total=False):
    tags: dict[str, str]


class ClusterJSON(TypedDict):
    id: str
    nodes: list[str]
    volumes: list[str]
    block: bool
    file: bool
    blockvolumes: list[str]


class ClusterListJSON(TypedDict):
    clusters: list[str]


class VolumeListJSON(TypedDict):
    volumes: list[str]


class _BlockVolumeCreateRequired(TypedDict):
    size: int


class BlockVolumeCreateJSON(_BlockVolumeCreateRequired, total=False):
    """``POST /blockvolumes``: size in GiB; Heketi names it ``blockvol_<id>`` without a name."""

    name: str
    clusters: list[str]
    hacount: int
    auth: bool


class BlockVolumeTargetJSON(TypedDict, total=False):
    """``blockvolume``: the iSCSI target. username/password only with auth."""

    hosts: list[str]
    iqn: str
    lun: int
    username: str
    password: str


class _BlockVolumeRequired(TypedDict):
    size: int
    name: str
    id: str
    blockvolume: BlockVolumeTargetJSON


class BlockVolumeJSON(_BlockVolumeRequired, total=False):
    clusters: list[str]
    hacount: int
    auth: bool
    cluster: str
    blockhostingvolume: str


class BlockVolumeListJSON(TypedDict):
    blockvolumes: list[str]

"""Heketi's JSON shapes for the records in `state`.

Kept apart from the records so the wire format (Go's omitempty rules, field names)
lives in one place that can be checked against heketi-api.md line by line.
"""

from __future__ import annotations

from typing import Any

from .state import BlockVolume, Brick, Cluster, Database, Device, Node, Volume


def _number(value: float) -> int | float:
    """Go prints a float32 of 1 as `1`; Python would print `1.0`."""
    return int(value) if float(value).is_integer() else value


def brick_json(brick: Brick) -> dict[str, Any]:
    return {
        "id": brick.id,
        "path": brick.path,
        "device": brick.device_id,
        "node": brick.node_id,
        "volume": brick.volume_id,
        "size": brick.size_kib,
    }


def device_json(db: Database, device: Device) -> dict[str, Any]:
    return {
        "name": device.name,
        "storage": {
            "total": device.total_kib,
            "free": device.free_kib,
            "used": device.used_kib,
        },
        "id": device.id,
        "state": device.state,
        "bricks": [brick_json(db.bricks[b]) for b in sorted(device.bricks)],
    }


def node_json(db: Database, node: Node) -> dict[str, Any]:
    return {
        "zone": node.zone,
        "hostnames": {"manage": [node.manage], "storage": [node.storage]},
        "cluster": node.cluster_id,
        "id": node.id,
        "state": node.state,
        "devices": [device_json(db, db.devices[d]) for d in node.devices],
    }


def cluster_json(db: Database, cluster: Cluster) -> dict[str, Any]:
    return {
        "id": cluster.id,
        "nodes": sorted(cluster.nodes),
        # Heketi lists every volume of the cluster here, pending ones included.
        "volumes": sorted(cluster.volumes),
        "block": cluster.block,
        "file": cluster.file,
        "blockvolumes": sorted(
            b.id for b in db.block_volumes.values() if b.cluster_id == cluster.id
        ),
    }


def durability_json(durability: dict[str, Any]) -> dict[str, Any]:
    """Zero-valued inner fields are omitted; the inner objects themselves never are."""
    replicate = {k: v for k, v in durability.get("replicate", {}).items() if v}
    disperse = {k: v for k, v in durability.get("disperse", {}).items() if v}
    return {"type": durability["type"], "replicate": replicate, "disperse": disperse}


def volume_json(db: Database, volume: Volume) -> dict[str, Any]:
    hosts = list(volume.mount_hosts)
    body: dict[str, Any] = {
        "size": volume.size,
        "name": volume.name,
        "durability": durability_json(volume.durability),
    }
    if volume.gid:
        body["gid"] = volume.gid
    # Heketi adds the (empty) server-side pre and post options around the user's.
    body["glustervolumeoptions"] = ["", *volume.options, ""]
    if volume.block:
        body["block"] = True
    body["snapshot"] = {
        "enable": volume.snapshot_enable,
        "factor": _number(volume.snapshot_factor if volume.snapshot_enable else 1),
    }
    body["id"] = volume.id
    body["cluster"] = volume.cluster_id
    body["mount"] = {
        "glusterfs": {
            "hosts": hosts,
            "device": f"{hosts[0]}:{volume.name}" if hosts else f":{volume.name}",
            "options": {"backup-volfile-servers": ",".join(hosts[1:])},
        }
    }
    body["blockinfo"] = block_info_json(volume)
    body["bricks"] = [brick_json(db.bricks[b]) for b in volume.bricks]
    return body


def block_info_json(volume: Volume) -> dict[str, Any]:
    """``blockinfo``: empty for file volumes; sizes and members for block-hosting ones."""
    if not volume.block:
        return {}
    info: dict[str, Any] = {}
    if volume.block_free:
        info["freesize"] = volume.block_free
    if volume.block_reserved:
        info["reservedsize"] = volume.block_reserved
    if volume.block_volumes:
        info["blockvolume"] = sorted(volume.block_volumes)
    return info


def block_volume_json(block: BlockVolume) -> dict[str, Any]:
    body: dict[str, Any] = {"size": block.size}
    if block.clusters:
        body["clusters"] = list(block.clusters)
    body["name"] = block.name
    if block.hacount:
        body["hacount"] = block.hacount
    # Heketi does not echo ``auth`` back; it adds the size usable inside the LUN.
    body["usablesize"] = block.size
    body["id"] = block.id
    body["blockvolume"] = {
        "hosts": list(block.hosts),
        "iqn": block.iqn,
        "lun": 0,
        "username": block.username,
        "password": block.password,
    }
    body["cluster"] = block.cluster_id
    body["blockhostingvolume"] = block.hosting_id
    return body

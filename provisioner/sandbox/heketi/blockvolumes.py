"""Block volume list, info, create and delete, with Heketi's block-hosting accounting.

A block volume is a file inside a *block-hosting volume* (BHV): a replica-3 file
volume marked ``block`` whose ``blockinfo`` counts what is left. Create picks the
first BHV of a candidate cluster with enough ``freesize`` (and without a block
volume of the same name); if there is none and auto-create is on, it makes a new BHV
of ``block_hosting_volume_size`` GiB in the same step, holding back 2% of it
(``reservedsize``). Delete gives the space back; a BHV is never deleted with its last
block volume (Heketi leaves it for the next one). As for volumes, everything that
can be refused is refused before the 202, and the entries stay hidden until the
background step finishes.
"""

from __future__ import annotations

import random
import threading
import uuid

from .bodies import BOOL, INT, STR, STR_LIST, CreateRequest, Unparsable, decode_body
from .faults import Faults
from .operations import Operations
from .responses import ID_NOT_FOUND, Response, error, json_response
from .state import BlockVolume, Database, Volume
from .views import block_volume_json
from .volumes import VolumeService

BLOCK_CREATE_SCHEMA = {
    "size": INT,
    "name": STR,
    "clusters": STR_LIST,
    "hacount": INT,
    "auth": BOOL,
}
DEFAULT_BLOCK_HOSTING_VOLUME_SIZE = 1100
"""GiB: Heketi's default ``block_hosting_volume_size``."""
RESERVED_PERCENT = 2
"""Share of a new BHV Heketi holds back from block volumes."""
BLOCK_HOSTING_OPTIONS = "group gluster-block"
"""Heketi's default ``block_hosting_volume_options``."""
IQN_PREFIX = "iqn.2016-12.org.gluster-block:"
TOO_BIG = (
    "The size configured for automatic creation of block hosting volumes ({hosting}) is too "
    "small to host the requested block volume of size {size}. The available size on this "
    "block hosting volume, minus overhead, is {usable}. Please create a sufficiently large "
    "block hosting volume manually."
)
AUTO_CREATE_OFF = (
    "Block Hosting Volume Creation is disabled. Create a Block hosting volume and try again."
)


class BlockVolumeService:
    def __init__(
        self,
        *,
        db: Database,
        lock: threading.RLock,
        operations: Operations,
        faults: Faults,
        volumes: VolumeService,
        rng: random.Random,
        hosting_size: int = DEFAULT_BLOCK_HOSTING_VOLUME_SIZE,
        auto_create: bool = True,
    ) -> None:
        self.db = db
        self.lock = lock
        self.ops = operations
        self.faults = faults
        self.volumes = volumes
        self.rng = rng
        self.hosting_size = hosting_size
        self.auto_create = auto_create

    # -- reads ---------------------------------------------------------------------------

    def list_ids(self) -> Response:
        with self.lock:
            ids = sorted(b.id for b in self.db.block_volumes.values() if b.visible)
        return json_response({"blockvolumes": ids})

    def info(self, block_id: str) -> Response:
        with self.lock:
            block = self.db.block_volumes.get(block_id)
            if block is None or not block.visible:
                return error(404, ID_NOT_FOUND)
            return json_response(block_volume_json(block))

    # -- create ---------------------------------------------------------------------------

    def create(self, body: bytes) -> Response:
        try:
            request = decode_body(body, BLOCK_CREATE_SCHEMA)
        except Unparsable:
            return error(422, "request unable to be parsed")
        problems = _validation_errors(request)
        if problems:
            return error(400, problems)
        with self.lock:
            if not self.db.clusters:
                return error(400, "No clusters configured")
            for cluster_id in request["clusters"]:
                if cluster_id not in self.db.clusters:
                    return error(400, f"Cluster id {cluster_id} not found")
        if not self.ops.acquire():
            return self.volumes._busy()
        with self.lock:
            placed = self._place(request)
            if isinstance(placed, str):
                self.ops.release()
                return error(500, f"Failed to allocate new block volume: {placed}")
            block, hosting, new_hosting = placed

            def effect() -> str:
                block.pending_op = None
                if new_hosting:
                    hosting.pending_op = None
                return f"/blockvolumes/{block.id}"

            def rollback() -> None:
                self._remove(block)
                if new_hosting:
                    self.db.remove_volume(hosting.id)

            return self.volumes._start(
                "blockvolume_create", block.pending_op or "", effect, rollback
            )

    def _place(self, request: dict[str, object]) -> tuple[BlockVolume, Volume, bool] | str:
        size = int(request["size"])  # type: ignore[call-overload]
        name = str(request["name"])
        clusters = [str(c) for c in request["clusters"]]  # type: ignore[attr-defined]
        candidates = list(dict.fromkeys(clusters)) or sorted(self.db.clusters)
        hosting = self._existing_hosting(candidates, size, name)
        new_hosting = hosting is None
        if hosting is None:
            if not self.auto_create:
                return AUTO_CREATE_OFF
            usable = self.hosting_size - self.hosting_size * RESERVED_PERCENT // 100
            if size > usable:
                return TOO_BIG.format(hosting=self.hosting_size, size=size, usable=usable)
            made = self._new_hosting(candidates)
            if isinstance(made, str):
                return made
            hosting = made
        hacount = int(request["hacount"])  # type: ignore[call-overload]
        hosts = self._hosts_of(hosting)
        if hacount > len(hosts):
            if new_hosting:
                self.db.remove_volume(hosting.id)
            return f"Insufficient block hosts online. Requested {hacount} but found {len(hosts)}"
        block_id = self.db.new_id()
        auth = bool(request["auth"])
        block = BlockVolume(
            id=block_id,
            name=name or f"blockvol_{block_id}",
            size=size,
            cluster_id=hosting.cluster_id,
            hosting_id=hosting.id,
            hacount=hacount or len(hosts),
            auth=auth,
            hosts=hosts[: hacount or len(hosts)],
            iqn=IQN_PREFIX + str(uuid.UUID(int=self.rng.getrandbits(128))),
            username=str(uuid.UUID(int=self.rng.getrandbits(128))) if auth else "",
            password=str(uuid.UUID(int=self.rng.getrandbits(128))) if auth else "",
            clusters=clusters,
            pending_op=self.db.new_id(),
        )
        self.db.block_volumes[block.id] = block
        hosting.block_volumes.append(block.id)
        hosting.block_free -= size
        return block, hosting, new_hosting

    def _existing_hosting(self, candidates: list[str], size: int, name: str) -> Volume | None:
        for cluster_id in candidates:
            for volume_id in self.db.clusters[cluster_id].volumes:
                volume = self.db.volumes[volume_id]
                if not volume.block or not volume.visible or volume.block_free < size:
                    continue
                names = {self.db.block_volumes[b].name for b in volume.block_volumes}
                if name and name in names:
                    continue
                return volume
        return None

    def _new_hosting(self, candidates: list[str]) -> Volume | str:
        request = CreateRequest(
            size=self.hosting_size,
            name="",
            clusters=candidates,
            durability={"type": "replicate", "replicate": {"replica": 3}, "disperse": {}},
            gid=0,
            options=[BLOCK_HOSTING_OPTIONS],
            block=True,
            snapshot_enable=False,
            snapshot_factor=1.0,
            set_width=3,
            data_bricks=1,
        )
        made = self.volumes._allocate(request)
        if isinstance(made, str):
            return made
        made.block_reserved = self.hosting_size * RESERVED_PERCENT // 100
        made.block_free = self.hosting_size - made.block_reserved
        return made

    def _hosts_of(self, hosting: Volume) -> list[str]:
        """Storage addresses of the nodes holding the BHV's bricks, in cluster order."""
        holding = {self.db.bricks[b].node_id for b in hosting.bricks}
        return [
            self.db.nodes[n].storage
            for n in self.db.clusters[hosting.cluster_id].nodes
            if n in holding and self.db.nodes[n].state == "online"
        ]

    def _remove(self, block: BlockVolume) -> None:
        self.db.block_volumes.pop(block.id, None)
        hosting = self.db.volumes.get(block.hosting_id)
        if hosting is not None and block.id in hosting.block_volumes:
            hosting.block_volumes.remove(block.id)
            hosting.block_free += block.size

    # -- delete ---------------------------------------------------------------------------

    def delete(self, block_id: str) -> Response:
        with self.lock:
            if block_id not in self.db.block_volumes:
                return error(404, ID_NOT_FOUND)
        if not self.ops.acquire():
            return self.volumes._busy()
        with self.lock:
            block = self.db.block_volumes.get(block_id)
            if block is None or block.pending_op is not None:
                self.ops.release()
                if block is None:
                    return error(404, ID_NOT_FOUND)
                return error(500, "Failed to set up block volume delete: operation conflict")
            op_id = self.db.new_id()
            block.pending_op = op_id
            target = block

            def effect() -> None:
                self._remove(target)

            def rollback() -> None:
                target.pending_op = None

            return self.volumes._start("blockvolume_delete", op_id, effect, rollback)


def _validation_errors(request: dict[str, object]) -> str | None:
    """Heketi's ozzo-validation of a block create: size, name, hacount."""
    errors: dict[str, str] = {}
    size = request["size"]
    if size == 0:
        errors["size"] = "cannot be blank"
    elif isinstance(size, int) and size < 1:
        errors["size"] = "must be no less than 1"
    name = str(request["name"])
    if name and not all(c.isascii() and (c.isalnum() or c in "_-") for c in name):
        errors["name"] = "must be in a valid format"
    hacount = request["hacount"]
    if isinstance(hacount, int) and hacount < 0:
        errors["hacount"] = "must be no less than 1"
    if not errors:
        return None
    joined = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
    return f"validation failed: {joined}."

"""This process's accounts of Heketi volumes, shared by provision, delete and the sweep.

* ``gids``: the GIDs held per StorageClass (``GidAllocator``);
* ``indexes``: the name index of each Heketi server (``VolumeIndexes``);
* ``attempts``: each claim's provision attempt, and which claims are busy;
* ``owners``: which PV or claim owns each Heketi volume id (``VolumeOwners``), asked
  before an answer from Heketi is used (``answers``);
* which volumes' GIDs went back already: the controller may call delete again for a
  PV whose finalizer removal failed, by which time its GID may belong to a new claim,
  and the sweep may meet a volume the PV delete path already released.

Each user does its own Kubernetes and Heketi calls; what they share is kept here, so
none of them reaches into another.
"""

from __future__ import annotations

import threading

from heketi_client import HeketiClient, VolumeInfo
from provisioner.gluster.attempts import Attempts
from provisioner.gluster.gid import GidAllocator
from provisioner.gluster.volume_index import VolumeIndex, VolumeIndexes
from provisioner.gluster.volume_owners import VolumeOwners

__all__ = ["Ledger"]


class Ledger:
    def __init__(self, owners: VolumeOwners | None = None) -> None:
        self.gids = GidAllocator()
        self.indexes = VolumeIndexes()
        self.attempts = Attempts()
        self.owners = owners or VolumeOwners()
        self._lock = threading.Lock()
        self._released: set[str] = set()  # volume ids whose gid went back already

    def refresh(self, url: str, client: HeketiClient) -> VolumeIndex:
        """Bring the server's name index up to date: one list, a GET per new id."""
        index = self.indexes.for_server(url)
        index.refresh(client)
        return index

    def find(self, url: str, client: HeketiClient, name: str) -> VolumeInfo | None:
        """The volume an earlier attempt may have made under ``name`` (None: none
        visible yet); raises ``HeketiError`` as ``refresh`` does."""
        return self.refresh(url, client).lookup(name)

    def volume_gone(
        self, url: str, volume_id: str, class_name: str, gid: int | None, claim_uid: str
    ) -> None:
        """Bookkeeping once Heketi confirmed the volume gone: index, GID, attempt."""
        index = self.indexes.existing(url)
        if index is not None:
            index.remove(volume_id)
        if gid:
            self.gids.release(class_name, gid)
        self.attempts.volume_gone(claim_uid, volume_id)
        self.owners.release(volume_id)

    def first_release(self, volume_id: str) -> bool:
        """True only the first time for a volume: its GID goes back exactly once."""
        with self._lock:
            first = volume_id not in self._released
            self._released.add(volume_id)
            return first

"""Heketi volumes by name, per Heketi server: how a retry finds an earlier volume.

Heketi has no lookup by name: the only way is to list every id and GET each one.
Doing that for every claim would cost O(volumes) requests per claim, so an index is
built at most once per server, and only when some claim needs it (its earlier
attempt may have created a volume we have no record of). From then on our own
creates and deletes keep it current, and a *refresh* fetches only the ids it has
not seen: one list plus one GET per new volume, which after an uncertain create is
usually the single volume in question.

Consistency under concurrency: a refresh runs without holding the state lock while
it talks to Heketi, so creates and deletes may land meanwhile. A refresh therefore
never drops an id it did not know when it started (it may have been created after
the list was taken), and never re-adds an id deleted while it was running.

A volume whose answer cannot be read (wrong JSON types, another volume's id) is
skipped and tried again at the next refresh, rather than failing the whole index:
one broken volume must not stop every other claim's lookup. Since its name is then
unknown, ``unreadable`` says so, and whoever would conclude "no such volume" from a
lookup (the orphan sweep, before dropping a record and its GID) must not.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import structlog

from heketi_client import HeketiClient, VolumeInfo
from heketi_client.errors import NotFound, UnreadableVolume

__all__ = ["INDEX_WORKERS", "VolumeIndex", "VolumeIndexes"]

log = structlog.get_logger(__name__)

INDEX_WORKERS = 4
"""Parallel GETs while indexing: fast enough, and gentle on a Heketi serving others."""


class VolumeIndex:
    """Name → volume for one Heketi server. Thread-safe."""

    def __init__(self, url: str, *, workers: int = INDEX_WORKERS) -> None:
        self.url = url
        self._workers = workers
        self._state = threading.Lock()
        self._refreshing = threading.Lock()
        self._by_name: dict[str, VolumeInfo] = {}
        self._by_id: dict[str, VolumeInfo] = {}
        self._deleted_during_refresh: set[str] | None = None
        self._unreadable: set[str] = set()

    @property
    def unreadable(self) -> frozenset[str]:
        """Ids the last refresh listed but could not read."""
        with self._state:
            return frozenset(self._unreadable)

    def lookup(self, name: str) -> VolumeInfo | None:
        with self._state:
            return self._by_name.get(name)

    def get(self, volume_id: str) -> VolumeInfo | None:
        """The volume with that id, if indexed (lets the orphan sweep skip a GET)."""
        with self._state:
            return self._by_id.get(volume_id)

    def __len__(self) -> int:
        with self._state:
            return len(self._by_id)

    def add(self, volume: VolumeInfo) -> None:
        """Record a volume we created or found, so the next lookup needs no Heketi call."""
        with self._state:
            self._put(volume)

    def remove(self, volume_id: str) -> None:
        with self._state:
            old = self._by_id.pop(volume_id, None)
            if old is not None and self._by_name.get(old.name) is old:
                del self._by_name[old.name]
            if self._deleted_during_refresh is not None:
                self._deleted_during_refresh.add(volume_id)

    def _put(self, volume: VolumeInfo) -> None:
        other = self._by_name.get(volume.name)
        if other is not None and other.id != volume.id:
            # Heketi allows equal names in different clusters; keep the first seen so
            # that every lookup answers the same volume.
            log.warning(
                "volume_index.name_shared",
                heketi_volume=volume.name,
                volume_ids=[other.id, volume.id],
                server=self.url,
            )
            self._by_id[volume.id] = volume
            return
        self._by_id[volume.id] = volume
        self._by_name[volume.name] = volume

    def refresh(self, client: HeketiClient) -> None:
        """Bring the index up to date with Heketi, fetching only ids not seen before."""
        with self._refreshing:
            self._refresh_locked(client)

    def _refresh_locked(self, client: HeketiClient) -> None:
        with self._state:
            known_before = set(self._by_id)
            self._deleted_during_refresh = set()
        try:
            listed = set(client.list_volumes())
            fresh, unreadable = self._fetch(client, sorted(listed - known_before))
            with self._state:
                deleted = self._deleted_during_refresh or set()
                for volume in fresh:
                    if volume.id not in deleted:
                        self._put(volume)
                self._unreadable = unreadable
                for gone in known_before - listed:
                    old = self._by_id.pop(gone, None)
                    if old is not None and self._by_name.get(old.name) is old:
                        del self._by_name[old.name]
        finally:
            with self._state:
                self._deleted_during_refresh = None
        log.info("volume_index.refreshed", server=self.url, known=len(self), fetched=len(fresh))

    def _fetch(self, client: HeketiClient, ids: list[str]) -> tuple[list[VolumeInfo], set[str]]:
        """The readable volumes among ``ids``, and the ids that could not be read."""
        if not ids:
            return [], set()
        unreadable: set[str] = set()

        def get(volume_id: str) -> VolumeInfo | None:
            try:
                return client.get_volume(volume_id)
            except NotFound:  # deleted between the list and the GET
                return None
            except UnreadableVolume as err:
                log.warning(
                    "volume_index.unreadable", volume_id=volume_id, server=self.url, error=str(err)
                )
                unreadable.add(volume_id)
                return None

        with ThreadPoolExecutor(max_workers=min(self._workers, len(ids))) as pool:
            found = [v for v in pool.map(get, ids) if v is not None]
        return found, unreadable


class VolumeIndexes:
    """One ``VolumeIndex`` per Heketi server URL, created on first use."""

    def __init__(self, *, workers: int = INDEX_WORKERS) -> None:
        self._workers = workers
        self._lock = threading.Lock()
        self._indexes: dict[str, VolumeIndex] = {}

    def for_server(self, url: str) -> VolumeIndex:
        with self._lock:
            index = self._indexes.get(url)
            if index is None:
                index = self._indexes[url] = VolumeIndex(url, workers=self._workers)
            return index

    def existing(self, url: str) -> VolumeIndex | None:
        with self._lock:
            return self._indexes.get(url)

"""Per-StorageClass GID allocation, lowest free first.

Each Gluster volume gets a supplemental group that pods use to write to it, so two
volumes of the same class must never share one. The allocator is rebuilt at start
from the ``pv.beta.kubernetes.io/gid`` annotations of existing PVs (ours and the
in-tree provisioner's) and from the intent records of claims that have no PV yet,
and then kept in memory.

A GID can have several holders: a Heketi clone keeps its source's GID, so the
source's PV, the clone's intent record (from before the clone is asked for) and
later the clone's PV all hold it. It is counted once per holder (``share``) and is
free again only after the last holder's ``release``; a source deleted while its
clone is in flight therefore cannot hand its GID to the next claim of the class.

Used GIDs are kept as sorted, disjoint, non-adjacent intervals. The lowest free GID
at or above ``gid_min`` is then either ``gid_min`` itself or one past the end of the
interval holding it, found by one binary search: a class with a million volumes
allocated in sequence is still a single interval.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Mapping
from typing import Any

from provisioner.gluster.annotations import ANN_GID

__all__ = ["GID_LIMIT", "GidAllocator", "GidExhausted", "gid_from_pv", "parse_gid"]

# Heketi rejects gid >= 2**31 - 1.
GID_LIMIT = 2147483646


class GidExhausted(Exception):
    """Every GID of the class's range is taken."""

    def __init__(self, class_name: str, gid_min: int, gid_max: int) -> None:
        self.class_name = class_name
        self.gid_min = gid_min
        self.gid_max = gid_max
        super().__init__(
            f"StorageClass {class_name}: every GID in [{gid_min}, {gid_max}] is in use; "
            "widen gidMin/gidMax or delete volumes"
        )


class _Intervals:
    """Sorted disjoint intervals [starts[i], ends[i]], never touching each other."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def _index(self, value: int) -> int:
        """Index of the last interval starting at or below ``value`` (-1 if none)."""
        return bisect_right(self.starts, value) - 1

    def __contains__(self, value: int) -> bool:
        i = self._index(value)
        return i >= 0 and self.ends[i] >= value

    def __len__(self) -> int:
        return sum(end - start + 1 for start, end in zip(self.starts, self.ends, strict=True))

    def lowest_free(self, low: int) -> int:
        i = self._index(low)
        return self.ends[i] + 1 if i >= 0 and self.ends[i] >= low else low

    def add(self, value: int) -> None:
        if value in self:
            return
        i = self._index(value)
        joins_left = i >= 0 and self.ends[i] == value - 1
        joins_right = i + 1 < len(self.starts) and self.starts[i + 1] == value + 1
        if joins_left and joins_right:
            self.ends[i] = self.ends[i + 1]
            del self.starts[i + 1], self.ends[i + 1]
        elif joins_left:
            self.ends[i] = value
        elif joins_right:
            self.starts[i + 1] = value
        else:
            self.starts.insert(i + 1, value)
            self.ends.insert(i + 1, value)

    def remove(self, value: int) -> None:
        if value not in self:
            return
        i = self._index(value)
        start, end = self.starts[i], self.ends[i]
        if start == end:
            del self.starts[i], self.ends[i]
        elif value == start:
            self.starts[i] = value + 1
        elif value == end:
            self.ends[i] = value - 1
        else:
            self.ends[i] = value - 1
            self.starts.insert(i + 1, value + 1)
            self.ends.insert(i + 1, end)


class GidAllocator:
    """Thread-safe GID bookkeeping, one pool per StorageClass name.

    The range is passed on every ``allocate`` rather than fixed per class, because
    an operator may edit gidMin/gidMax (by re-creating the class) while PVs with
    GIDs from the old range still exist; those stay recorded and are never reused.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[str, _Intervals] = {}
        # Volumes beyond the first that hold a GID: a Heketi clone keeps its
        # source's GID (its files carry it), so until every one is gone the GID stays.
        self._extra: dict[tuple[str, int], int] = {}

    def observe(self, class_name: str, gid: int) -> None:
        """Record a GID found on an existing PV.

        GIDs outside what Heketi can hold (negative, or above 2147483646) cannot
        belong to a volume and are ignored. GIDs outside the class's *current*
        range are kept: the range may widen later.
        """
        if not 0 <= gid <= GID_LIMIT:
            return
        with self._lock:
            self._pools.setdefault(class_name, _Intervals()).add(gid)

    def allocate(self, class_name: str, gid_min: int, gid_max: int) -> int:
        """Take the lowest free GID in [gid_min, gid_max]."""
        with self._lock:
            pool = self._pools.setdefault(class_name, _Intervals())
            gid = pool.lowest_free(gid_min)
            if gid > gid_max or gid > GID_LIMIT:
                raise GidExhausted(class_name, gid_min, gid_max)
            pool.add(gid)
            return gid

    def share(self, class_name: str, gid: int) -> None:
        """One more holder of ``gid``: a clone's record or PV beside its source's
        (Heketi clones keep the GID), or at start one more PV or record naming it.
        The GID is free only after every holder's ``release``. A GID nobody held yet
        becomes held by this one."""
        if not 0 <= gid <= GID_LIMIT:
            return
        with self._lock:
            pool = self._pools.setdefault(class_name, _Intervals())
            if gid not in pool:
                pool.add(gid)
                return
            self._extra[(class_name, gid)] = self._extra.get((class_name, gid), 0) + 1

    def release(self, class_name: str, gid: int) -> None:
        """Give a GID back; call only once its Heketi volume is gone. A GID that
        several volumes share is free only after the last one's release."""
        with self._lock:
            extra = self._extra.get((class_name, gid), 0)
            if extra:
                if extra == 1:
                    del self._extra[(class_name, gid)]
                else:
                    self._extra[(class_name, gid)] = extra - 1
                return
            pool = self._pools.get(class_name)
            if pool is not None:
                pool.remove(gid)

    def holders(self, class_name: str, gid: int) -> int:
        """How many releases it takes before ``gid`` is free (0: free now)."""
        with self._lock:
            pool = self._pools.get(class_name)
            if pool is None or gid not in pool:
                return 0
            return 1 + self._extra.get((class_name, gid), 0)

    def is_used(self, class_name: str, gid: int) -> bool:
        with self._lock:
            pool = self._pools.get(class_name)
            return pool is not None and gid in pool

    def used_count(self, class_name: str) -> int:
        with self._lock:
            pool = self._pools.get(class_name)
            return 0 if pool is None else len(pool)


def parse_gid(value: object) -> int | None:
    """A GID written as plain ASCII digits, or None.

    ``int()`` also takes ``+2000``, ``2_000`` and non-ASCII digits such as ``٢٠٠٠``;
    a GID spelled like that was not written by us or by the in-tree provisioner, so
    it is not a GID at all here.
    """
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or len(value) > 10 or not all("0" <= c <= "9" for c in value):
        return None
    gid = int(value)
    return gid if gid <= GID_LIMIT else None


def gid_from_pv(pv: Mapping[str, Any]) -> int | None:
    """The PV's GID annotation as an int, or None when absent or not a valid GID."""
    metadata = pv.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    value = annotations.get(ANN_GID) if isinstance(annotations, Mapping) else None
    return parse_gid(value)

"""Paginated lists: ``limit``/``continue`` served from a snapshot taken at the first page.

A real server serves later pages at the first page's resourceVersion from etcd; the
sandbox keeps the first page's entries instead, so pages stay consistent whatever is
written in between. The 64 most recent snapshots are kept; an older token gets 410,
as a compacted continue token does.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .status import bad_request, expired
from .store import Entry, Store

Filter = Callable[[dict[str, Any]], bool] | None
_SNAPSHOTS = 64


class Pages:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._snapshots: OrderedDict[str, list[Entry]] = OrderedDict()
        self._snap_lock = threading.Lock()

    def list_entries(
        self,
        storage: str,
        namespace: str | None,
        match: Filter,
        *,
        limit: int = 0,
        continue_token: str | None = None,
    ) -> tuple[int, list[Entry], str | None, int]:
        """(list resourceVersion, entries, continue token, remaining item count)."""
        if continue_token:
            rv, entries, offset = self._resume(continue_token)
        else:
            rv, entries = self._store.snapshot(storage, namespace or None)
            if match is not None:
                entries = [e for e in entries if match(e.obj)]
            offset = 0
        if limit <= 0 or offset + limit >= len(entries):
            return rv, entries[offset:], None, 0
        end = offset + limit
        token = self._remember(rv, entries, end)
        return rv, entries[offset:end], token, len(entries) - end

    def _remember(self, rv: int, entries: list[Entry], offset: int) -> str:
        # A paginated list keeps its snapshot, so later pages are consistent with the
        # first page's resourceVersion whatever is written in between.
        snap_id = uuid.uuid4().hex
        with self._snap_lock:
            self._snapshots[snap_id] = entries
            while len(self._snapshots) > _SNAPSHOTS:
                self._snapshots.popitem(last=False)
        raw = json.dumps({"rv": rv, "s": snap_id, "o": offset}).encode()
        return base64.urlsafe_b64encode(raw).decode()

    def _resume(self, token: str) -> tuple[int, list[Entry], int]:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            rv, snap_id, offset = int(data["rv"]), str(data["s"]), int(data["o"])
        except (ValueError, KeyError, TypeError):
            raise bad_request("continue key is not valid: incorrect encoded start") from None
        with self._snap_lock:
            entries = self._snapshots.get(snap_id)
        if entries is None:
            raise expired(
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter."
            )
        return rv, entries, offset

"""What clients asked for: one record per API request, in RBAC terms.

Tests use it to prove behaviour that is invisible in the final state, e.g. that a
controller watches instead of polling, or never writes a claim it does not own.
"""

from __future__ import annotations

import threading
from typing import NamedTuple


class RequestRecord(NamedTuple):
    verb: str  # get, list, watch, create, update, patch, delete, deletecollection
    resource: str  # plural name; "" for non-resource URLs (discovery, /version)
    subresource: str
    namespace: str
    name: str
    user_agent: str
    status: int
    group: str = ""  # API group, "" for the core group
    path: str = ""  # the URL path, useful for non-resource requests


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

"""Fault injection: the failures a controller must survive, on demand.

All state is guarded by one lock; the server consults it once per request, so a fault
armed before a request is guaranteed to hit that request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .resources import WRITE_VERBS
from .status import REASONS, ApiError
from .store import Store


@dataclass
class _WriteFailure:
    resource: str
    remaining: int
    status: int
    message: str
    verbs: frozenset[str]


class Faults:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._write_failures: list[_WriteFailure] = []
        self._expire: list[str | None] = []
        self.latency: float = 0.0

    def drop_watches(self) -> int:
        """End every open watch stream now; returns how many were open."""
        return self._store.drop_watchers()

    def expire_next_watch(self, resource: str | None = None) -> None:
        """The next watch (of ``resource``, a plural name, or of anything) gets 410 Expired."""
        with self._lock:
            self._expire.append(resource)

    def fail_next_writes(
        self,
        resource: str,
        count: int = 1,
        status: int = 500,
        message: str = "injected failure",
        verbs: set[str] | frozenset[str] | list[str] | None = None,
    ) -> None:
        """The next ``count`` writes (RBAC verbs) to ``resource`` answer ``status``.

        ``resource`` may name a subresource ("persistentvolumeclaims/status") to fail
        only that; a bare plural matches the resource and all its subresources.
        """
        chosen = frozenset(verbs) if verbs is not None else WRITE_VERBS
        with self._lock:
            self._write_failures.append(_WriteFailure(resource, count, status, message, chosen))

    def clear(self) -> None:
        with self._lock:
            self._write_failures.clear()
            self._expire.clear()
            self.latency = 0.0

    # -- consulted by the server ----------------------------------------------

    def take_write_failure(self, verb: str, resource: str, subresource: str) -> ApiError | None:
        full = f"{resource}/{subresource}" if subresource else resource
        with self._lock:
            for failure in self._write_failures:
                if failure.resource in (resource, full) and verb in failure.verbs:
                    failure.remaining -= 1
                    if failure.remaining <= 0:
                        self._write_failures.remove(failure)
                    headers = {"Retry-After": "1"} if failure.status == 429 else None
                    details = {"retryAfterSeconds": 1} if failure.status == 429 else None
                    return ApiError(
                        failure.status,
                        failure.message,
                        reason=REASONS.get(failure.status, "InternalError"),
                        details=details,
                        headers=headers,
                    )
        return None

    def take_watch_expiry(self, resource: str) -> bool:
        with self._lock:
            for wanted in self._expire:
                if wanted is None or wanted == resource:
                    self._expire.remove(wanted)
                    return True
        return False

"""Fault injection: the failures a controller must survive, on demand.

All state is guarded by one lock; the server consults it once per request, so a fault
armed before a request is guaranteed to hit that request.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from ..holding import Hold
from .rbac import Attributes, User
from .resources import ALL_VERBS, WRITE_VERBS
from .status import REASONS, ApiError, forbidden
from .store import Store


@dataclass
class _WriteHold:
    resource: str
    verbs: frozenset[str]
    hold: Hold


@dataclass
class _WriteFailure:
    resource: str
    remaining: int
    status: int
    message: str
    verbs: frozenset[str]


@dataclass(frozen=True)
class _Denial:
    resource: str
    verbs: frozenset[str]
    user: str


class Faults:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._denials: list[_Denial] = []
        self._write_failures: list[_WriteFailure] = []
        self._expire: list[str | None] = []
        self._holds: list[_WriteHold] = []
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

    def hold_next_write(
        self,
        resource: str,
        *,
        verbs: set[str] | frozenset[str] | list[str] | None = None,
        after_effect: bool = False,
    ) -> Hold:
        """Hold the next write (RBAC verb) to ``resource`` until ``Hold.release()``.

        Without ``after_effect`` the request waits before it is applied; with it, it
        is applied and only the answer waits. Matching as in ``fail_next_writes``.
        """
        chosen = frozenset(verbs) if verbs is not None else WRITE_VERBS
        hold = Hold(after_effect)
        with self._lock:
            self._holds.append(_WriteHold(resource, chosen, hold))
        return hold

    def deny(
        self,
        resource: str,
        verbs: set[str] | frozenset[str] | list[str] | None = None,
        *,
        user: str = "system:serviceaccount:heketi-provisioner:heketi-provisioner",
    ) -> None:
        """Answer 403 to ``verbs`` (RBAC verbs; all when None) on ``resource`` (a plural)
        until ``clear()``, whoever asks, in the RBAC authorizer's words naming ``user``:
        what a missing Role rule does. Access reviews of them answer "not allowed" (what
        a permission check before startup sees); RBAC objects are judged after this."""
        chosen = frozenset(verbs) if verbs is not None else frozenset(ALL_VERBS)
        with self._lock:
            self._denials.append(_Denial(resource, chosen, user))

    def clear(self) -> None:
        with self._lock:
            self._denials.clear()
            self._write_failures.clear()
            self._expire.clear()
            holds, self._holds = self._holds, []
            self.latency = 0.0
        for armed in holds:  # not reached yet: nothing may wait on them later
            armed.hold.release()

    # -- consulted by the server ----------------------------------------------

    def denies(self, verb: str, resource: str) -> bool:
        """Whether a planted refusal covers ``verb`` on ``resource`` (a plural)."""
        with self._lock:
            return any(d.resource == resource and verb in d.verbs for d in self._denials)

    def take_denial(self, attrs: Attributes) -> ApiError | None:
        """The 403 of a planted refusal that covers this request, naming its user."""
        with self._lock:
            matching = (d for d in self._denials if d.resource == attrs.resource)
            found = next((d for d in matching if attrs.verb in d.verbs), None)
        return None if found is None else forbidden(replace(attrs, user=User(found.user)))

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

    def take_write_hold(self, verb: str, resource: str, subresource: str) -> Hold | None:
        full = f"{resource}/{subresource}" if subresource else resource
        with self._lock:
            for armed in self._holds:
                if armed.resource in (resource, full) and verb in armed.verbs:
                    self._holds.remove(armed)
                    return armed.hold
        return None

    def take_watch_expiry(self, resource: str) -> bool:
        with self._lock:
            for wanted in self._expire:
                if wanted is None or wanted == resource:
                    self._expire.remove(wanted)
                    return True
        return False

"""Fault injection: armed by tests, consumed by the next matching requests.

Faults are keyed by route (`"POST /volumes"`, `"GET /queue/{id}"`); the operation
names `volume_create`, `volume_delete`, `volume_expand` and `volume_clone` are aliases
for their routes. Each kind of fault is a FIFO of single-use charges, so
`fail_next(op, count=2)` affects exactly the next two matching requests.

Two faults make the simulator a *hostile* Heketi rather than a failing one, for the
tests of what the controller believes: ``misdirect_result_next`` (an operation's 303
names another volume) and ``tamper_next`` (a JSON answer is rewritten before it goes
out). Both answer with well-formed Heketi shapes; only the content lies.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..holding import Hold

T = TypeVar("T")

OP_ROUTES = {
    "volume_create": "POST /volumes",
    "volume_delete": "DELETE /volumes/{id}",
    "volume_expand": "POST /volumes/{id}/expand",
    "volume_clone": "POST /volumes/{id}/clone",
    "blockvolume_create": "POST /blockvolumes",
    "blockvolume_delete": "DELETE /blockvolumes/{id}",
}
ROUTE_OPS = {route: op for op, route in OP_ROUTES.items()}


def route_of(op: str) -> str:
    """Accept an operation name or a route; reject anything else early."""
    if op in OP_ROUTES:
        return OP_ROUTES[op]
    method, _, path = op.partition(" ")
    if not method.isupper() or not path.startswith("/"):
        raise ValueError(f"not an operation name or a route: {op!r}")
    return op


@dataclass(frozen=True)
class Fail:
    status: int
    text: str


@dataclass(frozen=True)
class Drop:
    # True: the request takes effect (e.g. the volume is created) and only the answer
    # is lost — "the request reached Heketi". False: nothing happens at all.
    after_effect: bool


@dataclass(frozen=True)
class Hang:
    seconds: float
    after_effect: bool


Tamper = Callable[[Any], Any]
"""Gets a JSON answer (decoded), returns the one to send instead, or None to leave
this answer alone and keep the charge for a later one."""


@dataclass(frozen=True)
class RequestFaults:
    """What to do to one request; every field may be absent."""

    hang: Hang | None = None
    drop: Drop | None = None
    fail: Fail | None = None
    hold: Hold | None = None


class Faults:
    """The injection API exposed as `HeketiSimulator.faults`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fail: dict[str, deque[Fail]] = {}
        self._drop: dict[str, deque[Drop]] = {}
        self._hang: dict[str, deque[Hang]] = {}
        self._fail_async: dict[str, deque[str]] = {}
        self._lose: dict[str, deque[bool]] = {}
        self._hold: dict[str, deque[Hold]] = {}
        self._misdirect: dict[str, deque[str]] = {}
        self._tamper: dict[str, deque[Tamper]] = {}

    def __repr__(self) -> str:
        return f"Faults(armed={self.armed()})"

    def fail_next(
        self, op: str, count: int = 1, status: int = 500, text: str = "Injected failure"
    ) -> None:
        """Answer the next `count` matching requests with `status` and `text` at once."""
        with self._lock:
            _arm(self._fail, route_of(op), Fail(status, text), count)

    def fail_async_next(self, op: str, count: int = 1, text: str = "Injected failure") -> None:
        """Accept (202) but fail the background step: the queue answers 500 `text`."""
        route = route_of(op)
        if route not in ROUTE_OPS:
            raise ValueError(f"{op!r} is not an asynchronous operation")
        with self._lock:
            _arm(self._fail_async, route, text, count)

    def drop_connection_next(self, op: str, count: int = 1, *, after_effect: bool = False) -> None:
        """Close the socket without answering (see `Drop.after_effect`)."""
        with self._lock:
            _arm(self._drop, route_of(op), Drop(after_effect), count)

    def lose_result_next(self, op: str, count: int = 1) -> None:
        """The operation completes, but its queue entry answers 404 `Id not found`."""
        route = route_of(op)
        if route not in ROUTE_OPS:
            raise ValueError(f"{op!r} is not an asynchronous operation")
        with self._lock:
            _arm(self._lose, route, True, count)

    def misdirect_result_next(self, op: str, location: str, count: int = 1) -> None:
        """The operation completes, but its queue entry's 303 points at ``location``
        (e.g. ``/volumes/<another volume's id>``) instead of the volume it made."""
        route = route_of(op)
        if route not in ROUTE_OPS:
            raise ValueError(f"{op!r} is not an asynchronous operation")
        if not location.startswith("/"):
            raise ValueError("location must be a path, as Heketi sends it")
        with self._lock:
            _arm(self._misdirect, route, location, count)

    def tamper_next(self, op: str, change: Tamper, count: int = 1) -> None:
        """Rewrite the next ``count`` 200 JSON answers of ``op`` that ``change`` accepts
        (it returns None for an answer it leaves alone: that one goes out unchanged
        and the charge stays armed)."""
        with self._lock:
            _arm(self._tamper, route_of(op), change, count)

    def hang_next(
        self, op: str, count: int = 1, seconds: float = 30.0, *, after_effect: bool = False
    ) -> None:
        """Hold the request `seconds` before handling it (or, with `after_effect`,
        before answering it). Stopping or downing the server cuts the hang short."""
        with self._lock:
            _arm(self._hang, route_of(op), Hang(seconds, after_effect), count)

    def hold_next(self, op: str, *, after_effect: bool = False) -> Hold:
        """Hold the next matching request until `Hold.release()`: before handling it,
        or with `after_effect` after handling it and before answering."""
        hold = Hold(after_effect)
        with self._lock:
            _arm(self._hold, route_of(op), hold, 1)
        return hold

    def clear(self) -> None:
        with self._lock:
            for table in (
                self._fail, self._drop, self._hang, self._fail_async, self._lose,
                self._misdirect, self._tamper,
            ):  # fmt: skip
                table.clear()
            holds = [h for items in self._hold.values() for h in items]
            self._hold.clear()
        for hold in holds:  # not reached yet: nothing may wait on them later
            hold.release()

    def armed(self) -> dict[str, int]:
        """Remaining charges per kind and route, for debugging failed tests."""
        with self._lock:
            out: dict[str, int] = {}
            for kind, table in (
                ("fail", self._fail),
                ("drop", self._drop),
                ("hang", self._hang),
                ("fail_async", self._fail_async),
                ("lose_result", self._lose),
                ("hold", self._hold),
                ("misdirect_result", self._misdirect),
                ("tamper", self._tamper),
            ):
                for route, items in table.items():
                    if items:
                        out[f"{kind} {route}"] = len(items)
            return out

    # -- consumed by the server -------------------------------------------------------

    def take_request(self, route: str) -> RequestFaults:
        with self._lock:
            return RequestFaults(
                hang=_pop(self._hang, route),
                drop=_pop(self._drop, route),
                fail=_pop(self._fail, route),
                hold=_pop(self._hold, route),
            )

    def take_async_failure(self, route: str) -> str | None:
        with self._lock:
            return _pop(self._fail_async, route)

    def take_lost_result(self, route: str) -> bool:
        with self._lock:
            charge = _pop(self._lose, route)
            return charge is not None


    def take_misdirect(self, route: str) -> str | None:
        with self._lock:
            return _pop(self._misdirect, route)

    def tamper(self, route: str, answer: Any) -> Any | None:
        """The first armed change of ``route`` applied to ``answer``; None when none is
        armed or it left this answer alone (its charge then stays)."""
        with self._lock:
            changes = self._tamper.get(route)
            change = changes[0] if changes else None
        if change is None:
            return None
        changed = change(answer)
        if changed is None:
            return None
        with self._lock:
            changes = self._tamper.get(route)
            if changes and changes[0] is change:
                changes.popleft()
        return changed


def _arm(table: dict[str, deque[T]], route: str, item: T, count: int) -> None:
    if count < 1:
        raise ValueError("count must be at least 1")
    table.setdefault(route, deque()).extend([item] * count)


def _pop(table: dict[str, deque[T]], route: str) -> T | None:
    items = table.get(route)
    return items.popleft() if items else None

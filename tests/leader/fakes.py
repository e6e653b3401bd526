"""An in-memory Lease API under ``KubeAPI``, for the elector's timing.

The sandbox API server answers in real time, so a test of "steps down after 10 s"
would take 10 s and still depend on the machine's speed. Here time is a number
(``tests.fakeclock``): the elector's waits move it forward, and the transport moves
it forward by a request's latency *while* the request is in flight, which is what a
slow API server does.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3

from provisioner.k8s.kubeapi import KubeAPI
from provisioner.k8s.leader import LeaderElector
from tests.fakeclock import FakeClock

NAMESPACE = "kube-system"
LEASE = "heketi-provisioner-fake"


@dataclass
class Request:
    method: str
    path: str
    body: dict[str, Any] | None
    sent: float
    status: int = 0

    def clears_holder(self) -> bool:
        """A release: a write that hands the lease back (empty holderIdentity)."""
        spec = (self.body or {}).get("spec") or {}
        return self.method in ("PUT", "POST") and spec.get("holderIdentity") == ""


@dataclass
class _Raw:
    status: int
    data: bytes

    def read(self) -> bytes:
        return self.data

    def release_conn(self) -> None:
        pass


@dataclass
class _Answer:
    response: _Raw


Latency = Callable[[Request], float]
Failure = Callable[[Request], int | None]


@dataclass
class FakeLeaseServer:
    """Stands in for the ``ApiClient`` that ``KubeAPI`` drives: one namespace's Leases.

    ``latency(request)`` is how long the request takes (fake seconds); ``fail(request)``
    may return an HTTP status to answer instead of doing it. With ``honour_timeouts``
    a request slower than its ``_request_timeout`` times out after that timeout (and
    was still applied: the worst case for the elector); urllib3's timeouts are per
    socket read, so a trickling answer can outlast them, hence the switch.
    """

    clock: Callable[[], float]
    advance: Callable[[float], None]
    latency: Latency = lambda _request: 0.0
    fail: Failure = lambda _request: None
    honour_timeouts: bool = True
    requests: list[Request] = field(default_factory=list)
    leases: dict[str, dict[str, Any]] = field(default_factory=dict)
    user_agent: str = ""
    _version: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the two ApiClient methods KubeAPI uses ------------------------------

    def param_serialize(
        self,
        method: str,
        path: str,
        *,
        query_params: list[tuple[str, Any]],
        header_params: dict[str, str],
        body: Any,
        auth_settings: list[str],
    ) -> tuple[str, str, dict[str, str], Any, list[Any]]:
        return method, path, header_params, body, []

    def call_api(
        self,
        method: str,
        url: str,
        *,
        header_params: dict[str, str],
        body: Any,
        post_params: list[Any],
        _request_timeout: float,
    ) -> _Answer:
        request = Request(method, url, copy.deepcopy(body), self.clock())
        with self._lock:
            self.requests.append(request)
        status = self.fail(request)
        if status is None:
            status, answer = self._apply(request)
        else:
            answer = {"kind": "Status", "code": status, "message": "injected"}
        request.status = status
        took = self.latency(request)
        if self.honour_timeouts and took >= _request_timeout:
            self.advance(_request_timeout)
            raise urllib3.exceptions.ReadTimeoutError(None, url, "read timed out")  # type: ignore[arg-type]
        self.advance(took)
        return _Answer(_Raw(status, json.dumps(answer).encode()))

    # -- a Lease store with resourceVersion checks ---------------------------

    def _apply(self, request: Request) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if request.method == "GET":
                name = request.path.rsplit("/", 1)[1]
                if name not in self.leases:
                    return 404, {"kind": "Status", "code": 404, "reason": "NotFound"}
                return 200, copy.deepcopy(self.leases[name])
            assert request.body is not None
            name = request.body["metadata"]["name"]
            stored = self.leases.get(name)
            if request.method == "POST" and stored is not None:
                return 409, {"kind": "Status", "code": 409, "reason": "AlreadyExists"}
            if request.method == "PUT":
                if stored is None:
                    return 404, {"kind": "Status", "code": 404, "reason": "NotFound"}
                sent_version = request.body["metadata"].get("resourceVersion")
                if sent_version != stored["metadata"]["resourceVersion"]:
                    return 409, {"kind": "Status", "code": 409, "reason": "Conflict"}
            self._version += 1
            written = copy.deepcopy(request.body)
            written["metadata"]["resourceVersion"] = str(self._version)
            self.leases[name] = written
            return 200 if request.method == "PUT" else 201, copy.deepcopy(written)

    def write_behind(self, name: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Change the stored lease as another writer would (kubectl): a new version."""
        with self._lock:
            change(self.leases[name])
            self._version += 1
            self.leases[name]["metadata"]["resourceVersion"] = str(self._version)

    def lease_requests(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if "/leases" in r.path]


@dataclass
class Timeline:
    """When (fake time) each callback ran. The elector stops itself at the ``stop_at``
    callback (name, how many times), so that a test's timeline ends there instead of
    running on; the test waits for that with ``finish``."""

    clock: FakeClock
    stop_at: tuple[str, int] = ("stopped", 1)
    events: list[tuple[str, float]] = field(default_factory=list)
    elector: LeaderElector | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def started(self) -> None:
        self._note("started")

    def lost(self) -> None:
        self._note("lost")

    def stopped(self) -> None:
        self._note("stopped")

    def _note(self, name: str) -> None:
        self.events.append((name, self.clock()))
        if (name, len(self.at(name))) == self.stop_at and self.elector is not None:
            self.elector.stop()  # on the elector's thread: returns at once
            self.done.set()

    def finish(self, timeout: float) -> bool:
        """Wait for ``stop_at``, then for the elector's thread to end: after that the
        events are complete and no other thread touches them."""
        if not self.done.wait(timeout) or self.elector is None:
            return False
        self.elector.stop(timeout)
        return not self.elector.running()

    def at(self, what: str) -> list[float]:
        return [moment for name, moment in self.events if name == what]


def fake_elector(
    server: FakeLeaseServer,
    clock: FakeClock,
    *,
    identity: str = "replica-a",
    stop_at: tuple[str, int] = ("stopped", 1),
    lease_duration: float = 15.0,
    renew_deadline: float = 10.0,
    retry_period: float = 2.0,
) -> tuple[LeaderElector, Timeline]:
    timeline = Timeline(clock, stop_at)
    elector = LeaderElector(
        KubeAPI(server, request_timeout=30.0),  # type: ignore[arg-type]
        namespace=NAMESPACE,
        name=LEASE,
        identity=identity,
        lease_duration=lease_duration,
        renew_deadline=renew_deadline,
        retry_period=retry_period,
        on_started_leading=timeline.started,
        on_stopped_leading=timeline.stopped,
        on_lost_leading=timeline.lost,
        clock=clock,
        wait=clock.wait,
    )
    timeline.elector = elector
    return elector, timeline

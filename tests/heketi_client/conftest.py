"""Shared fixtures: a fake clock, a mocked Heketi (``responses``), Heketi-shaped JSON, and
loopback servers that misbehave on purpose."""

from __future__ import annotations

import contextlib
import random
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
import requests
import responses

from heketi_client import HeketiClient, PollPolicy, RetryPolicy

BASE = "http://heketi.test:8080"
KEY = "Sup3r-s3cret-heketi-KEY-0123456789abcdef"
VOL = "a" * 32
CLUSTER = "c" * 32
NODES = ("1" * 32, "2" * 32, "3" * 32)
DEVICES = ("d1" * 16, "d2" * 16, "d3" * 16)
QUEUE = "/queue/" + "f" * 32


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def heketi() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def make_client(fake_time: FakeTime) -> Callable[..., HeketiClient]:
    def make(**overrides: Any) -> HeketiClient:
        options: dict[str, Any] = {
            "user": "admin",
            "key": KEY,
            "retry": RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.5),
            "poll": PollPolicy(first_delay=0.01, factor=2.0, max_interval=0.08),
            "clock": fake_time.clock,
            "sleep": fake_time.sleep,
            "rng": random.Random(7),
        }
        options.update(overrides)
        url = options.pop("url", BASE)
        return HeketiClient(url, **options)

    return make


@pytest.fixture
def client(make_client: Callable[..., HeketiClient]) -> Iterator[HeketiClient]:
    with make_client() as c:
        yield c


class Wire:
    """Constants and Heketi-shaped bodies, handed to tests through the ``wire`` fixture
    (test modules cannot import this conftest under --import-mode=importlib)."""

    BASE = BASE
    KEY = KEY
    VOL = VOL
    CLUSTER = CLUSTER
    NODES = NODES
    DEVICES = DEVICES
    QUEUE = QUEUE

    @staticmethod
    def claims_of(
        request: requests.PreparedRequest, key: str = KEY, *, verify_exp: bool = True
    ) -> dict[str, Any]:
        return claims_of(request, key, verify_exp=verify_exp)

    @staticmethod
    def brick_json(n: int, volume: str = VOL) -> dict[str, Any]:
        return brick_json(n, volume)

    @staticmethod
    def volume_json(volume_id: str = VOL, name: str | None = None, **extra: Any) -> dict[str, Any]:
        return volume_json(volume_id, name, **extra)


@pytest.fixture
def wire() -> type[Wire]:
    return Wire


def claims_of(
    request: requests.PreparedRequest, key: str = KEY, *, verify_exp: bool = True
) -> dict[str, Any]:
    """Decode (and verify) the bearer token the way Heketi would."""
    scheme, _, token = request.headers["Authorization"].partition(" ")
    assert scheme == "bearer"
    options = {"require": ["iss", "exp", "qsh"], "verify_exp": verify_exp}
    return jwt.decode(token, key, algorithms=["HS256"], options=options)  # type: ignore[arg-type]


def brick_json(n: int, volume: str = VOL) -> dict[str, Any]:
    brick = f"{n:032x}"
    return {
        "id": brick,
        "path": f"/var/lib/heketi/mounts/vg_{DEVICES[n % 3]}/brick_{brick}/brick",
        "device": DEVICES[n % 3],
        "node": NODES[n % 3],
        "volume": volume,
        "size": 10485760,
    }


def volume_json(volume_id: str = VOL, name: str | None = None, **extra: Any) -> dict[str, Any]:
    """Exactly what heketi v10 answers for a plain replica-3 volume of 10 GiB."""
    name = name or f"vol_{volume_id}"
    body: dict[str, Any] = {
        "size": 10,
        "name": name,
        "durability": {"type": "replicate", "replicate": {"replica": 3}, "disperse": {}},
        "gid": 2001,
        "glustervolumeoptions": ["", ""],
        "snapshot": {"enable": False, "factor": 1},
        "id": volume_id,
        "cluster": CLUSTER,
        "mount": {
            "glusterfs": {
                "hosts": ["10.0.0.1", "10.0.0.2", "10.0.0.3"],
                "device": f"10.0.0.1:{name}",
                "options": {"backup-volfile-servers": "10.0.0.2,10.0.0.3"},
            }
        },
        "blockinfo": {},
        "bricks": [brick_json(n, volume_id) for n in range(3)],
    }
    body.update(extra)
    return body


Script = Callable[[socket.socket, bytes, threading.Event], None]


class ScriptedServer:
    """A loopback HTTP server whose every connection is answered by ``script``.

    ``script(conn, request, stop)`` writes whatever it likes (slowly, endlessly,
    wrongly); ``stop`` is set on close, so scripts that pace themselves with
    ``stop.wait`` end at once. Real sockets are what a trickle or an oversized body
    needs: ``responses`` hands the client its body in one piece.
    """

    def __init__(self, script: Script) -> None:
        self.script = script
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[bytes] = []
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5.0)
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, body = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                while len(body) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    body += chunk
                self.requests.append(head + b"\r\n\r\n" + body)
                self.script(conn, head, self.stop)
            except OSError:
                return  # the client hung up: what several tests expect

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        for conn in self._conns:  # wakes scripts blocked in recv()
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._accepting.join(5.0)
        for thread in self._threads:
            thread.join(5.0)


@pytest.fixture
def scripted_server() -> Iterator[Callable[[Script], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Script) -> ScriptedServer:
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()

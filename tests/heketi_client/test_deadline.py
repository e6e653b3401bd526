"""Every HTTP request has an overall deadline, not only per-read timeouts.

Against real loopback sockets: the point is a server that keeps each single read
short (one byte at a time) so that no read timeout ever fires.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from heketi_client import (
    DEFAULT_REQUEST_DEADLINE,
    HeketiClient,
    HeketiTimeout,
    OutcomeUnknown,
    RetryPolicy,
    VolumeCreateRequest,
)
from heketi_client._deadline import RequestWatch, _watchdog

INTERVAL = 0.05
"""Seconds between the trickling server's bytes: far below the 2 s read timeout."""


def trickle_body(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    conn.sendall(b"Content-Length: 100000\r\n\r\n")
    while not stop.wait(INTERVAL):
        conn.sendall(b" ")


def trickle_headers(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while not stop.wait(INTERVAL):
        conn.sendall(b"a")


def answer_json(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    body = b'{"clusters":[]}\n'
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    # Keep-alive: answer further requests on the same connection the same way.
    while conn.recv(65536):
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )


def client_for(url: str, make_client: Callable[..., HeketiClient], **kw: Any) -> HeketiClient:
    options: dict[str, Any] = {
        "timeout": (2.0, 2.0),
        "request_deadline": 0.5,
        "retry": RetryPolicy(attempts=1),
    }
    return make_client(url=url, **{**options, **kw})


@pytest.mark.parametrize("script", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_a_trickling_server_hits_the_deadline(
    script: Any, scripted_server: Any, make_client: Callable[..., HeketiClient]
) -> None:
    """Without it, a hostile Heketi sending a byte every 50 ms holds a provisioner
    thread for as long as it likes: no single read ever waits 2 s."""
    server = scripted_server(script)
    client = client_for(server.url, make_client)
    started = time.monotonic()
    with pytest.raises(HeketiTimeout, match=r"request deadline of 0\.5 s") as caught:
        client.list_clusters()
    elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 1.5  # the deadline ended it, not the 2 s read timeout
    assert (caught.value.method, caught.value.path) == ("GET", "/clusters")


def test_a_trickled_create_is_outcome_unknown_and_not_resent(
    scripted_server: Any, make_client: Callable[..., HeketiClient]
) -> None:
    """The POST went out before the trickle began: Heketi may have acted on it, so a
    re-send could make a second volume."""
    server = scripted_server(trickle_body)
    client = client_for(server.url, make_client, retry=RetryPolicy(attempts=3, backoff=0.0))
    with pytest.raises(OutcomeUnknown, match="request deadline"):
        client.create_volume(VolumeCreateRequest(1, name="pvc-slow"))
    server.close()
    assert len(server.requests) == 1


def test_connections_still_work_and_are_reused_under_a_deadline(
    scripted_server: Any, make_client: Callable[..., HeketiClient]
) -> None:
    """The deadline's pool hook must not cost the normal case anything."""
    server = scripted_server(answer_json)
    client = client_for(server.url, make_client)
    with client:
        for _ in range(5):
            assert client.list_clusters() == []
    assert len(server.requests) == 1  # one connection, kept alive for all five


def test_a_connection_back_in_the_pool_is_never_shut_down() -> None:
    """The deadline fires on a timer thread; by then the connection may be serving
    another request, which must not be the one to fail."""

    class Conn:
        def __init__(self) -> None:
            self.sock, self.peer = socket.socketpair()

    conn = Conn()
    watch = RequestWatch(60.0)
    with watch:
        watch.adopt(conn)
        watch.release(conn)  # the pool took it back
        watch._fire()
        assert watch.expired
    conn.peer.sendall(b"x")
    assert conn.sock.recv(1) == b"x"  # still open in both directions
    conn.sock.sendall(b"y")
    assert conn.peer.recv(1) == b"y"
    conn.sock.close()
    conn.peer.close()


def test_a_held_connection_is_shut_down_when_the_deadline_passes() -> None:
    class Conn:
        def __init__(self) -> None:
            self.sock, self.peer = socket.socketpair()

    conn = Conn()
    with RequestWatch(60.0) as watch:
        watch.adopt(conn)
        watch._fire()
        assert conn.sock.recv(1) == b""  # a read that would block returns at once
    conn.sock.close()
    conn.peer.close()


@pytest.mark.parametrize("deadline", [0.0, -1.0])
def test_the_deadline_must_be_positive(deadline: float) -> None:
    with pytest.raises(ValueError, match="request_deadline"):
        HeketiClient("http://heketi:8080", request_deadline=deadline)


def test_default_deadline() -> None:
    assert DEFAULT_REQUEST_DEADLINE == 60.0


def test_the_watchdog_keeps_no_state_for_finished_requests() -> None:
    """One shared deadline thread: its queue must not grow with every request made."""
    for _ in range(10_000):
        with RequestWatch(60.0):
            pass
    assert _watchdog.pending() <= 130

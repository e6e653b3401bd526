"""Failure classification against real sockets, where urllib3 raises its own exceptions.

The mocked tests build those exceptions by hand; these make sure the hand-built ones
match reality: "refused" is safe to resend, "dropped after sending" is not.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from heketi_client import HeketiClient, RetryPolicy, VolumeCreateRequest
from heketi_client.errors import HeketiConnectionError, HeketiTimeout, OutcomeUnknown


class RudeServer:
    """Accepts connections, reads one request, then closes (or holds) the socket."""

    def __init__(self, *, hold: bool) -> None:
        self.hold = hold
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5.0)
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5.0)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                if self.hold:
                    self.release.wait(5.0)

    def close(self) -> None:
        self.release.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        self.thread.join(5.0)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def rude_server() -> Iterator[Callable[..., RudeServer]]:
    servers: list[RudeServer] = []

    def start(*, hold: bool) -> RudeServer:
        servers.append(RudeServer(hold=hold))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def make(url: str, make_client: Callable[..., HeketiClient], **kw: Any) -> HeketiClient:
    return make_client(url=url, retry=RetryPolicy(attempts=2, backoff=0.0), **kw)


def test_refused_create_is_retried_then_reported_as_not_sent(
    closed_port: int, make_client: Callable[..., HeketiClient], fake_time: Any
) -> None:
    client = make(f"http://127.0.0.1:{closed_port}", make_client)
    with pytest.raises(HeketiConnectionError) as caught:
        client.create_volume(VolumeCreateRequest(1))
    assert caught.value.request_sent is False
    assert len(fake_time.sleeps) == 1  # one retry, because nothing had been sent


def test_create_dropped_after_sending_is_outcome_unknown(
    rude_server: Callable[..., RudeServer], make_client: Callable[..., HeketiClient]
) -> None:
    server = rude_server(hold=False)  # reads the request, then hangs up without a word
    client = make(f"http://127.0.0.1:{server.port}", make_client)
    with pytest.raises(OutcomeUnknown):
        client.create_volume(VolumeCreateRequest(1, name="pvc-a"))
    server.close()
    assert len(server.requests) == 1 and server.requests[0].startswith(b"POST /volumes ")


def test_get_dropped_after_sending_is_retried(
    rude_server: Callable[..., RudeServer], make_client: Callable[..., HeketiClient]
) -> None:
    server = rude_server(hold=False)
    client = make(f"http://127.0.0.1:{server.port}", make_client)
    with pytest.raises(HeketiConnectionError) as caught:
        client.list_volumes()
    assert caught.value.request_sent is True
    server.close()
    assert len(server.requests) == 2


def test_read_timeouts(
    rude_server: Callable[..., RudeServer], make_client: Callable[..., HeketiClient]
) -> None:
    server = rude_server(hold=True)  # holds each connection without answering
    client = make(f"http://127.0.0.1:{server.port}", make_client, timeout=(2.0, 0.1))
    with pytest.raises(OutcomeUnknown):
        client.create_volume(VolumeCreateRequest(1))
    with pytest.raises(HeketiTimeout):
        client.list_volumes()

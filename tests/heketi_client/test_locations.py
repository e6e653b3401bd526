"""Location headers are followed only to the server (and base path) we were given.

Every poll and the GET after a 303 carry a newly signed admin token. A Heketi, or
whatever answers in its place, that could point us elsewhere would collect those
tokens and direct our traffic; so an other origin is refused, and so is any path
that is not one of Heketi's queue or resource paths.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses

from heketi_client import (
    ForeignLocation,
    HeketiClient,
    OutcomeUnknown,
    UnexpectedResponse,
    VolumeCreateRequest,
)
from heketi_client._auth import HeketiJWTAuth

QUEUE_ID = "f" * 32


OTHER_ORIGINS = [
    "http://evil.test:8080",  # other host
    "http://heketi.test:8081",  # other port
    "https://heketi.test:8080",  # other scheme
    "//evil.test:8080",  # scheme-relative: still another host
]


@pytest.mark.parametrize("origin", OTHER_ORIGINS)
def test_a_queue_location_on_another_origin_is_refused(
    origin: str, client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    """Without the check, the poll would take a fresh admin token to that host."""
    foreign = origin + "/queue/" + QUEUE_ID
    absolute = foreign if not foreign.startswith("//") else "http:" + foreign
    heketi.post(wire.BASE + "/volumes", status=202, headers={"Location": foreign})
    trap = heketi.get(absolute, status=204)
    with pytest.raises(ForeignLocation) as caught:
        client.create_volume(VolumeCreateRequest(1, name="pvc-1"))
    error = caught.value
    assert trap.call_count == 0
    assert len(heketi.calls) == 1  # the POST, nothing after it
    assert error.base_origin == "http://heketi.test:8080"
    assert error.offered_origin != error.base_origin
    assert error.base_origin in str(error) and error.offered_origin in str(error)
    # The create was accepted: the caller must look the name up, as after a lost answer.
    assert isinstance(error, OutcomeUnknown) and isinstance(error, UnexpectedResponse)
    assert (error.method, error.path, error.status) == ("POST", "/volumes", 202)


def test_a_303_to_another_origin_is_refused(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    """Without the check, the result GET would take a fresh admin token to that host."""
    heketi.post(wire.BASE + "/volumes", status=202, headers={"Location": wire.QUEUE})
    heketi.get(
        wire.BASE + wire.QUEUE,
        status=303,
        headers={"Location": f"http://evil.test/volumes/{wire.VOL}"},
    )
    trap = heketi.get(f"http://evil.test/volumes/{wire.VOL}", json=wire.volume_json())
    with pytest.raises(ForeignLocation, match=r"http://evil\.test:80") as caught:
        client.create_volume(VolumeCreateRequest(1))
    assert trap.call_count == 0
    assert caught.value.status == 303 and caught.value.path == wire.QUEUE


@pytest.mark.parametrize(
    "location",
    [
        "/queue/../clusters/" + QUEUE_ID,  # dot segments: could climb out of a proxy prefix
        "/queue/" + QUEUE_ID + "?next=http://evil.test",
        "/queue/" + QUEUE_ID + "#x",
        "/metrics",
        "/queue/not-an-id",  # would also be a new metrics label per operation
        "/QUEUE/" + QUEUE_ID.upper(),
        "javascript:alert(1)",
        "http:/queue/" + QUEUE_ID,
        "http://heketi.test:notaport/queue/" + QUEUE_ID,
        "",
    ],
)
def test_a_location_that_is_not_a_heketi_path_is_refused(
    location: str, client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    """Without the check, a Location could steer our signed polls to any endpoint."""
    heketi.add(
        "DELETE", f"{wire.BASE}/volumes/{wire.VOL}", status=202, headers={"Location": location}
    )
    with pytest.raises(OutcomeUnknown):
        client.delete_volume(wire.VOL)
    assert len(heketi.calls) == 1


@pytest.mark.parametrize(
    "location",
    [
        "/queue/" + QUEUE_ID,
        "queue/" + QUEUE_ID,  # relative: resolved against the base URL
        "http://heketi.test:8080/queue/" + QUEUE_ID,
        "HTTP://Heketi.TEST:8080/queue/" + QUEUE_ID,  # scheme and host are case-blind
    ],
)
def test_locations_on_our_own_origin_are_followed(
    location: str, client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.add(
        "DELETE", f"{wire.BASE}/volumes/{wire.VOL}", status=202, headers={"Location": location}
    )
    heketi.get(f"{wire.BASE}/queue/{QUEUE_ID}", status=204)
    client.delete_volume(wire.VOL)
    assert [c.request.url for c in heketi.calls][1] == f"{wire.BASE}/queue/{QUEUE_ID}"


def test_default_ports_are_the_same_origin(
    make_client: Callable[..., HeketiClient], heketi: responses.RequestsMock, wire: Any
) -> None:
    client = make_client(url="https://heketi.test")
    heketi.add(
        "DELETE",
        f"https://heketi.test/volumes/{wire.VOL}",
        status=202,
        headers={"Location": f"https://heketi.test:443/queue/{QUEUE_ID}"},
    )
    heketi.get(f"https://heketi.test/queue/{QUEUE_ID}", status=204)
    client.delete_volume(wire.VOL)


@pytest.mark.parametrize(
    ("location", "followed"),
    [
        ("/queue/" + QUEUE_ID, True),  # Heketi's own, passed on by the proxy
        ("https://gw.example/heketi/queue/" + QUEUE_ID, True),  # rewritten by the proxy
        ("https://gw.example/queue/" + QUEUE_ID, False),  # same host, outside the prefix
        ("https://gw.example/heketi-admin/queue/" + QUEUE_ID, False),
    ],
)
def test_behind_a_path_prefix(
    location: str,
    followed: bool,
    make_client: Callable[..., HeketiClient],
    heketi: responses.RequestsMock,
    wire: Any,
) -> None:
    """Another service on the same gateway is another server as far as tokens go."""
    base = "https://gw.example/heketi"
    client = make_client(url=base)
    heketi.add("DELETE", f"{base}/volumes/{wire.VOL}", status=202, headers={"Location": location})
    heketi.get(f"{base}/queue/{QUEUE_ID}", status=204)
    trap = heketi.get(f"https://gw.example/queue/{QUEUE_ID}", status=204)
    if followed:
        client.delete_volume(wire.VOL)
        assert heketi.calls[1].request.url == f"{base}/queue/{QUEUE_ID}"
    else:
        with pytest.raises(ForeignLocation):
            client.delete_volume(wire.VOL)
        assert len(heketi.calls) == 1
    assert trap.call_count == 0


def test_the_signer_never_signs_for_another_origin(wire: Any) -> None:
    """Last line of defence should a request to another server ever be made."""
    auth = HeketiJWTAuth("admin", wire.KEY, origin="http://heketi.test:8080")
    ours = auth(requests.Request("GET", f"{wire.BASE}/volumes").prepare())
    assert ours.headers["Authorization"].startswith("bearer ")
    for url in ("http://evil.test:8080/volumes", "http://heketi.test:8081/volumes"):
        theirs = auth(requests.Request("GET", url).prepare())
        assert "Authorization" not in theirs.headers


class Recorder:
    """A loopback server that counts connections and answers nothing useful."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.connections = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(5.0)


def test_two_loopback_servers_no_request_reaches_the_other_port(
    scripted_server: Any, make_client: Callable[..., HeketiClient]
) -> None:
    """The realistic case: another service on the same host, one port over."""
    other = Recorder()
    try:

        def accept_elsewhere(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
            location = f"http://127.0.0.1:{other.port}/queue/{QUEUE_ID}"
            head = f"HTTP/1.1 202 Accepted\r\nLocation: {location}\r\nContent-Length: 0\r\n"
            conn.sendall(head.encode() + b"\r\n")

        heketi = scripted_server(accept_elsewhere)
        client = make_client(url=heketi.url)
        with pytest.raises(ForeignLocation) as caught:
            client.create_volume(VolumeCreateRequest(1, name="pvc-two"))
        assert caught.value.offered_origin == f"http://127.0.0.1:{other.port}"
        assert caught.value.base_origin == f"http://127.0.0.1:{heketi.port}"
    finally:
        other.close()
    assert other.connections == 0

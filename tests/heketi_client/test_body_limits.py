"""Response bodies are streamed and capped at ``max_body_bytes``.

Without the cap, whatever answers at the Heketi URL decides how much memory the
provisioner spends on one answer: an endless body, or a small gzip that inflates to
gigabytes, would take the process down.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest
import responses

from heketi_client import (
    DEFAULT_MAX_BODY_BYTES,
    HeketiClient,
    OutcomeUnknown,
    ResponseTooLarge,
    UnexpectedResponse,
    VolumeCreateRequest,
)

LIMIT = 1024


@pytest.fixture
def small(make_client: Callable[..., HeketiClient]) -> HeketiClient:
    return make_client(max_body_bytes=LIMIT)


def ids_json(count: int) -> str:
    return json.dumps({"volumes": [f"{n:032x}" for n in range(count)]})


def test_a_body_over_the_cap_is_refused_and_not_retried(
    small: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    """A GET must not be retried into the same flood either."""
    heketi.get(wire.BASE + "/volumes", body=ids_json(100), content_type="application/json")
    with pytest.raises(ResponseTooLarge, match=f"max_body_bytes={LIMIT}") as caught:
        small.list_volumes()
    assert isinstance(caught.value, UnexpectedResponse)
    assert caught.value.limit == LIMIT
    assert (caught.value.method, caught.value.path, caught.value.status) == (
        "GET",
        "/volumes",
        200,
    )
    assert len(heketi.calls) == 1


def test_a_body_at_the_cap_is_read(
    make_client: Callable[..., HeketiClient], heketi: responses.RequestsMock, wire: Any
) -> None:
    body = ids_json(20)
    heketi.get(wire.BASE + "/volumes", body=body, content_type="application/json")
    assert len(make_client(max_body_bytes=len(body)).list_volumes()) == 20


def test_an_error_body_over_the_cap_is_refused_too(
    small: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(wire.BASE + "/volumes", status=500, body="E" * (LIMIT + 1))
    with pytest.raises(ResponseTooLarge) as caught:
        small.list_volumes()
    assert caught.value.status == 500


def test_an_oversized_answer_to_a_create_is_outcome_unknown(
    small: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    """The create was sent and answered: it may have happened, so no re-send."""
    heketi.post(
        wire.BASE + "/volumes", status=202, headers={"Location": wire.QUEUE}, body="x" * 5000
    )
    with pytest.raises(OutcomeUnknown) as caught:
        small.create_volume(VolumeCreateRequest(1, name="pvc-big"))
    assert isinstance(caught.value.__cause__, ResponseTooLarge)
    assert len(heketi.calls) == 1


def test_the_cap_counts_inflated_bytes(
    small: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    """Compressed bytes inflate about a thousandfold (a gzip bomb): count what comes out."""
    bomb = gzip.compress(b" " * 800_000)
    assert len(bomb) < LIMIT
    heketi.get(
        wire.BASE + "/volumes",
        body=bomb,
        headers={"Content-Encoding": "gzip"},
        content_type="application/json",
    )
    with pytest.raises(ResponseTooLarge):
        small.list_volumes()


def test_an_endless_body_is_cut_off_without_reading_it_all(
    scripted_server: Any, make_client: Callable[..., HeketiClient]
) -> None:
    """Over a real socket, a chunked body with no end and no Content-Length."""
    sent = [0]

    def endless(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
        while not stop.is_set() and sent[0] < 1 << 30:
            conn.sendall(chunk)
            sent[0] += len(chunk)

    server = scripted_server(endless)
    client = make_client(url=server.url, max_body_bytes=256 * 1024)
    with pytest.raises(ResponseTooLarge):
        client.list_clusters()
    server.close()
    assert sent[0] < 64 * 1024 * 1024  # the client hung up long before a gigabyte


def test_the_default_holds_fifty_thousand_volume_ids(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    body = ids_json(50_000)
    assert len(body) < DEFAULT_MAX_BODY_BYTES / 4
    heketi.get(wire.BASE + "/volumes", body=body, content_type="application/json")
    assert len(client.list_volumes()) == 50_000
    assert DEFAULT_MAX_BODY_BYTES == 8 * 1024 * 1024


@pytest.mark.parametrize("limit", [0, -1, True])
def test_the_cap_must_be_positive(limit: Any) -> None:
    with pytest.raises(ValueError, match="max_body_bytes"):
        HeketiClient("http://heketi:8080", max_body_bytes=limit)

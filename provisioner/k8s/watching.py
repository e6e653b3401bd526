"""An open watch response, read line by line as the API server sends it."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from typing import Any

import urllib3

from provisioner.k8s.errors import KubeUnavailable, error_from_status

__all__ = ["WatchStream"]

KubeObject = dict[str, Any]


class WatchStream:
    """An open watch response: iterate for events, ``close()`` from any thread."""

    def __init__(self, raw: urllib3.BaseHTTPResponse) -> None:
        self._raw = raw
        self._closed = False

    def __iter__(self) -> Iterator[KubeObject]:
        try:
            for line in _lines(self._raw):
                if not line.strip():
                    continue
                event: KubeObject = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise error_from_status(int(status.get("code") or 500), json.dumps(status))
                yield event
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            if self._closed:
                return
            raise KubeUnavailable(0, type(exc).__name__, str(exc)) from exc
        finally:
            self.close()

    def close(self) -> None:
        """Unblock a reader in another thread: ``shutdown`` wakes a blocked recv, close does not."""
        if self._closed:
            return
        self._closed = True
        connection = getattr(self._raw, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self._raw.close()
            self._raw.release_conn()


def _chunks(raw: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """Bytes as soon as they arrive: watch events must not wait for a full buffer."""
    if isinstance(raw, urllib3.HTTPResponse) and raw.chunked and raw.supports_chunked_reads():
        yield from raw.read_chunked(decode_content=True)
        return
    while True:
        data = raw.read1(65536)
        if not data:
            return
        yield data


def _lines(raw: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    buffer = b""
    for chunk in _chunks(raw):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        yield from complete
    if buffer:
        yield buffer

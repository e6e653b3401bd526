"""HTTP framing for the sandbox: bodies in, JSON and chunked watch streams out.

HTTP/1.1 with keep-alive: every plain response carries a Content-Length, watches use
chunked transfer encoding, and request bodies are always read in full so that a
failed request never leaves bytes behind on a reused connection.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from .status import bad_request


class Api(Protocol):
    """What the server hands every request to (``server.Api``)."""

    def handle(self, req: BaseHTTPRequestHandler) -> None: ...


def read_body(req: BaseHTTPRequestHandler) -> tuple[bytes, str]:
    """(body bytes, content type); chunked request bodies are decoded too."""
    content_type = req.headers.get("Content-Type", "")
    if "chunked" in req.headers.get("Transfer-Encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size = int(req.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                req.rfile.readline()
                return b"".join(chunks), content_type
            chunks.append(req.rfile.read(size))
            req.rfile.readline()
    length = int(req.headers.get("Content-Length") or 0)
    return (req.rfile.read(length) if length > 0 else b""), content_type


def read_json(
    body: tuple[bytes, str], *, optional: bool = False, parse: Callable[[bytes], Any] = json.loads
) -> Any:
    raw = body[0]
    if not raw.strip():
        if optional:
            return None
        raise bad_request("the request body is empty")
    try:
        return parse(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"the request body is not valid JSON: {exc}") from None


def send(
    req: BaseHTTPRequestHandler,
    code: int,
    payload: bytes,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> None:
    req.send_response(code)
    req.send_header("Content-Type", content_type)
    req.send_header("Content-Length", str(len(payload)))
    for key, value in (headers or {}).items():
        req.send_header(key, value)
    try:
        req.end_headers()
        req.wfile.write(payload)
    except OSError:  # the client hung up before its answer (a timeout on its side)
        req.close_connection = True


def peer_closed(conn: socket.socket) -> bool:
    """True once the client has hung up (readable with nothing to read, or an error)."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def stream(req: BaseHTTPRequestHandler, lines: Iterable[bytes]) -> None:
    req.send_response(200)
    req.send_header("Content-Type", "application/json")
    req.send_header("Transfer-Encoding", "chunked")
    req.end_headers()
    req.wfile.flush()
    try:
        for line in lines:
            req.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            req.wfile.flush()
        req.wfile.write(b"0\r\n\r\n")
        req.wfile.flush()
    except OSError:
        req.close_connection = True
        return
    if getattr(lines, "dropped", False):
        req.close_connection = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without NODELAY, Nagle plus the
        # peer's delayed ACK adds ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, add=False)

    def _serve(self) -> None:
        self.server.api.handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are recorded in the request log; stderr stays quiet."""


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive connections must not hold up stop()
    allow_reuse_address = True
    # The API server's backlog is the system's; socketserver's default of 5 overflows
    # when many clients connect at once (resets, 1 s SYN retries).
    request_queue_size = socket.SOMAXCONN

    def __init__(self, address: tuple[str, int], api: Api) -> None:
        self.api = api
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, conn: socket.socket, *, add: bool) -> None:
        with self._conn_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

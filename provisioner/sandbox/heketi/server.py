"""The HTTP transport: keep-alive HTTP/1.1 on a threaded server, authentication in
front of routing, fault injection, request records, and going down and up again.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from .api import HeketiAPI
from .auth import OPEN_PATHS, Authenticator, AuthFailure
from .faults import Faults, Hang
from .responses import Response, error, json_response
from .routing import route_key


@dataclass(frozen=True)
class RequestRecord:
    """One request as seen by the simulator; `status` is None when the connection was
    dropped without an answer. Never holds the token."""

    method: str
    path: str
    route: str
    status: int | None
    user: str | None

    @property
    def key(self) -> str:
        outcome = "dropped" if self.status is None else self.status
        return f"{self.method} {self.route} {outcome}"


class Frontend:
    """What every request goes through before and after the API proper."""

    def __init__(self, api: HeketiAPI, auth: Authenticator | None, faults: Faults) -> None:
        self.api = api
        self.auth = auth
        self.faults = faults
        self._records_lock = threading.Lock()
        self.records: list[RequestRecord] = []
        self.wake = threading.Event()  # set to cut hangs short (stop, down)

    def _record(
        self, method: str, path: str, route: str, status: int | None, user: str | None
    ) -> None:
        with self._records_lock:
            self.records.append(RequestRecord(method, path, route, status, user))

    def handle(
        self, method: str, path: str, authorization: str | None, body: bytes
    ) -> Response | None:
        """The answer, or None to close the connection without one."""
        route = route_key(method, path)
        route_only = route.partition(" ")[2]
        user: str | None = None
        if self.auth is not None and path not in OPEN_PATHS:
            outcome = self.auth.check(method, path, authorization)
            if isinstance(outcome, AuthFailure):
                self._record(method, path, route_only, outcome.status, None)
                return error(outcome.status, outcome.text)
            user = outcome
        wake = self.wake
        charges = self.faults.take_request(route)
        hold = charges.hold
        if hold is not None and not hold.after_effect and not hold.block(wake):
            self._record(method, path, route_only, None, user)
            return None
        if charges.hang and not charges.hang.after_effect and self._hang(wake, charges.hang):
            self._record(method, path, route_only, None, user)
            return None
        if charges.drop and not charges.drop.after_effect:
            self._record(method, path, route_only, None, user)
            return None
        if charges.fail is not None:
            response = error(charges.fail.status, charges.fail.text)
        else:
            response = self._tampered(route, self.api.dispatch(method, path, body))
        if (
            (charges.hang and charges.hang.after_effect and self._hang(wake, charges.hang))
            or (charges.drop and charges.drop.after_effect)
            or (hold is not None and hold.after_effect and not hold.block(wake))
        ):
            self._record(method, path, route_only, None, user)
            return None
        self._record(method, path, route_only, response.status, user)
        return response

    def _tampered(self, route: str, response: Response) -> Response:
        """A 200 JSON answer as ``Faults.tamper_next`` rewrites it (if armed)."""
        if response.status != 200 or not response.headers.get("Content-Type", "").startswith(
            "application/json"
        ):
            return response
        changed = self.faults.tamper(route, json.loads(response.body))
        return response if changed is None else json_response(changed)

    @staticmethod
    def _hang(wake: threading.Event, hang: Hang) -> bool:
        """Hold the request; True if the server went away meanwhile."""
        return wake.wait(hang.seconds)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        """Silent: tests read `requests` instead, and nothing secret can leak."""

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in one write; without NODELAY, Nagle plus delayed
        # ACKs would still add ~40 ms per request on keep-alive connections.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.connections.untrack(self.connection)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        body = self._read_body()
        path = unquote(urlsplit(self.path).path)
        response = self.server.frontend.handle(
            self.command, path, self.headers.get("Authorization"), body
        )
        if response is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(self._encode(response))

    def _encode(self, response: Response) -> bytes:
        """Status line, headers and body as one write (see `setup`). Like Go's net/http:
        a Date header, no Server header, no Content-Length on 204."""
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        lines = [
            f"{self.protocol_version} {response.status} {reason}",
            f"Date: {self.date_time_string()}",
        ]
        lines += [f"{name}: {value}" for name, value in response.headers.items()]
        if response.status != 204:
            lines.append(f"Content-Length: {len(response.body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + (b"" if self.command == "HEAD" else response.body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _serve


class _Connections:
    """Open client sockets, so that `down()` can cut pooled keep-alive connections."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def cut_all(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Go listens with the system's maximum backlog; socketserver's default of 5
    # overflows when tests open a dozen connections at once (resets, 1 s SYN retries).
    request_queue_size = socket.SOMAXCONN

    def __init__(
        self, address: tuple[str, int], frontend: Frontend, connections: _Connections
    ) -> None:
        self.frontend = frontend
        self.connections = connections
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """Peers vanish mid-request in fault tests; that is not worth a traceback."""


class Listener:
    """One listening socket with its serving thread; can be closed and reopened on
    the same port (connection refused in between)."""

    def __init__(self, host: str, port: int, frontend: Frontend) -> None:
        self.host = host
        self.port = port
        self.frontend = frontend
        self.connections = _Connections()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._server is not None

    def open(self) -> int:
        with self._lock:
            if self._server is not None:
                return self.port
            self.frontend.wake = threading.Event()
            server = _Server((self.host, self.port), self.frontend, self.connections)
            self.port = server.server_address[1]
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"heketi-sim:{self.port}",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
            return self.port

    def close(self, on_closed: Callable[[], None] | None = None) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self.frontend.wake.set()
        self.connections.cut_all()
        if on_closed is not None:
            on_closed()

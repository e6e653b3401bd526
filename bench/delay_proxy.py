"""An HTTP proxy in front of a real Heketi that records every request and can make
each Heketi operation last ``latency`` seconds, at most ``max_inflight`` at once.

Why: Heketi's mock executor finishes every operation in microseconds, so a real Heketi
never has more than one operation in flight and its own limit
(``glusterfs.max_inflight_operations``) is never reached. The proxy gives each
operation the duration a Gluster backend would have, and applies the limit over that
duration with Heketi's own answer:

- An operation (POST /volumes, DELETE /volumes/{id}, POST /volumes/{id}/expand or
  /clone) takes a slot for ``latency`` seconds from the moment it arrives. With every
  slot taken the proxy answers it itself, exactly as Heketi does when busy: 429,
  ``Server busy. Retry operation later.``, no Retry-After. Otherwise it is passed on;
  a refusal by Heketi (anything but 202) frees the slot at once, as in Heketi.
- ``GET /queue/<id>`` of an operation younger than ``latency`` gets Heketi's pending
  answer (200, ``X-Pending: true``, empty body) from the proxy; once the time is up
  the poll is passed on and Heketi's real result (303, 204 or 500) comes back.
- Everything else is passed on untouched. With ``latency=0`` and no limit the proxy
  only records.

Every request is recorded (method, path, status, user agent, JSON body of a volume
create, times, and whether the proxy answered it itself). Standard library only.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BUSY_BODY = b"Server busy. Retry operation later.\n"
_OPERATION = re.compile(r"^/volumes(/[0-9a-f]+(/(expand|clone))?)?$")
_QUEUE = re.compile(r"^/queue/([0-9a-f]+)$")
_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"}
)


@dataclass(frozen=True)
class Record:
    method: str
    path: str
    status: int
    user_agent: str
    started: float  # time.monotonic()
    ended: float
    answered_by_proxy: bool  # a 429 or a pending poll the proxy gave itself
    body: Any = None  # the decoded JSON of POST /volumes, else None
    location: str = ""  # the answer's Location header (202: /queue/<id>, 303: /volumes/<id>)

    @property
    def kind(self) -> str:
        """create | delete | poll | read | other."""
        if self.path.startswith("/queue/"):
            return "poll"
        if self.method == "POST" and self.path == "/volumes":
            return "create"
        if self.method == "DELETE":
            return "delete"
        if self.method == "GET":
            return "read"
        return "other"


def is_operation(method: str, path: str) -> bool:
    """A request Heketi counts against max_inflight_operations (those we send)."""
    if not _OPERATION.match(path):
        return False
    if path == "/volumes":
        return method == "POST"
    if path.endswith(("/expand", "/clone")):
        return method == "POST"
    return method == "DELETE"


class HeketiProxy:
    """``HeketiProxy(upstream_url, latency=0.2, max_inflight=8)``; ``.start()`` then
    ``.url``; ``.records()``, ``.reset()``, ``.in_flight()``, ``.stop()``."""

    def __init__(
        self, upstream: str, *, latency: float = 0.0, max_inflight: int | None = None
    ) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"upstream must be http://host:port, not {upstream!r}")
        self.upstream_host = parsed.hostname
        self.upstream_port = parsed.port or 80
        self.latency = latency
        self.max_inflight = max_inflight
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._slots: list[float] = []  # end times of the operations holding a slot
        self._pending: dict[str, float] = {}  # queue id -> time its operation ends
        self._local = threading.local()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("proxy not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> HeketiProxy:
        proxy = self

        class Handler(_Handler):
            owner = proxy

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = socket.SOMAXCONN  # a burst of hundreds of connections

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="heketi-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HeketiProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what was seen ----------------------------------------------------------------

    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def reset(self) -> None:
        with self._lock:
            self._records.clear()

    def in_flight(self) -> int:
        now = time.monotonic()
        with self._lock:
            return sum(1 for end in self._slots if end > now)

    # -- the rules --------------------------------------------------------------------

    def _admit(self, now: float) -> float | None:
        """Take a slot until now + latency; None when every slot is taken."""
        with self._lock:
            self._slots = [end for end in self._slots if end > now]
            if self.max_inflight is not None and len(self._slots) >= self.max_inflight:
                return None
            end = now + self.latency
            self._slots.append(end)
            return end

    def _release(self, end: float) -> None:
        with self._lock, _suppress(ValueError):
            self._slots.remove(end)

    def _record(self, record: Record) -> None:
        with self._lock:
            self._records.append(record)

    def _upstream(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
            self._local.conn = conn
        return conn

    def forward(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send one request to Heketi on this thread's connection (reopened once if
        Heketi closed it)."""
        sent = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP | {"host"}]
        for attempt in (1, 2):
            conn = self._upstream()
            try:
                conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                conn.putheader("Host", f"{self.upstream_host}:{self.upstream_port}")
                for k, v in sent:
                    if k.lower() != "content-length":
                        conn.putheader(k, v)
                if body or method in ("POST", "PUT", "PATCH"):
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body or None)
                resp = conn.getresponse()
                data = resp.read()
                out = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
                if resp.will_close:
                    conn.close()
                    self._local.conn = None
                return resp.status, out, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                self._local.conn = None
                if attempt == 2 or method not in ("GET", "HEAD"):
                    raise
        raise AssertionError("unreachable")


class _suppress:
    def __init__(self, *exc: type[BaseException]) -> None:
        self.exc = exc

    def __enter__(self) -> None:
        return None

    def __exit__(self, typ: type[BaseException] | None, *rest: object) -> bool:
        return typ is not None and issubclass(typ, self.exc)


class _Handler(BaseHTTPRequestHandler):
    owner: HeketiProxy
    protocol_version = "HTTP/1.1"  # keep-alive, as Heketi offers

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _handle(self) -> None:
        proxy = self.owner
        started = time.monotonic()
        method = self.command
        path = urllib.parse.urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        agent = self.headers.get("User-Agent", "")
        decoded: Any = None
        if method == "POST" and path == "/volumes":
            try:
                decoded = json.loads(body or b"null")
            except ValueError:
                decoded = body.decode(errors="replace")

        def done(status: int, by_proxy: bool, location: str = "") -> None:
            proxy._record(
                Record(
                    method=method,
                    path=path,
                    status=status,
                    user_agent=agent,
                    started=started,
                    ended=time.monotonic(),
                    answered_by_proxy=by_proxy,
                    body=decoded,
                    location=location,
                )
            )

        queue = _QUEUE.match(path)
        if method == "GET" and queue:
            with proxy._lock:
                ends = proxy._pending.get(queue.group(1))
            if ends is not None and time.monotonic() < ends:
                self._answer(200, [("X-Pending", "true")], b"")
                done(200, True)
                return
        slot: float | None = None
        if is_operation(method, path) and (proxy.latency > 0 or proxy.max_inflight is not None):
            slot = proxy._admit(started)
            if slot is None:
                self._answer(
                    429,
                    [
                        ("Content-Type", "text/plain; charset=utf-8"),
                        ("X-Content-Type-Options", "nosniff"),
                    ],
                    BUSY_BODY,
                )
                done(429, True)
                return
        try:
            status, headers, data = proxy.forward(method, self.path, self.headers.items(), body)
        except OSError:
            if slot is not None:
                proxy._release(slot)
            self._answer(502, [("Content-Type", "text/plain")], b"heketi unreachable\n")
            done(502, True)
            return
        location = dict((k.lower(), v) for k, v in headers).get("location", "")
        if slot is not None:
            moved = _QUEUE.match(urllib.parse.urlsplit(location).path)
            if status == 202 and moved:
                with proxy._lock:
                    proxy._pending[moved.group(1)] = slot
            else:
                proxy._release(slot)  # refused by Heketi: no operation was started
        if queue and status != 200:
            with proxy._lock:
                proxy._pending.pop(queue.group(1), None)
        self._answer(status, headers, data)
        done(status, False, location)

    def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.send_response_only(status)
        for k, v in headers:
            if k.lower() not in ("content-length", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _handle


def breakdown(records: Iterable[Record]) -> dict[str, int]:
    """Counts per kind (create, delete, poll, read, other) and the 429s."""
    out = {"create": 0, "delete": 0, "poll": 0, "read": 0, "other": 0, "throttled": 0}
    for r in records:
        out[r.kind] += 1
        if r.status == 429:
            out["throttled"] += 1
    return out


def created_volumes(records: Iterable[Record]) -> dict[str, Record]:
    """Heketi volume id -> the POST /volumes that created it (followed through the
    queue: 202 Location /queue/<q>, then the poll's 303 Location /volumes/<id>)."""
    by_queue: dict[str, Record] = {}
    out: dict[str, Record] = {}
    # recorded when answered: a quick client's poll can be recorded before its POST
    for r in sorted(records, key=lambda r: r.started):
        if r.kind == "create" and r.status == 202:
            by_queue[urllib.parse.urlsplit(r.location).path] = r
        elif r.kind == "poll" and r.status == 303 and r.path in by_queue:
            volume = urllib.parse.urlsplit(r.location).path.rsplit("/", 1)[-1]
            out[volume] = by_queue[r.path]
    return out

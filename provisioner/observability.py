"""Metrics, health endpoints and log configuration.

Metric names for provision/delete are those of the sig-storage external-provisioner
library so that dashboards built for CSI provisioners work unchanged.  A dedicated
``CollectorRegistry`` keeps several controllers in one process (tests, sandbox)
from colliding in the global registry.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable, MutableMapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from provisioner.config import parse_address

_DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600)
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
NO_ANSWER = "error"
"""``status`` label of a Heketi request that got no HTTP answer (refused, reset, timeout)."""


class Metrics:
    """Every metric the process exports; the full list with labels is in docs/operations.md.

    Label values are bounded and never secret: classes, Heketi route templates
    (``GET /volumes/{id}``) and HTTP statuses, never URLs, ids or keys.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.provision_total = Counter(
            "controller_persistentvolumeclaim_provision_total",
            "Claims provisioned successfully.",
            ["class", "source"],
            registry=r,
        )
        self.provision_failed_total = Counter(
            "controller_persistentvolumeclaim_provision_failed_total",
            "Provisioning attempts that failed.",
            ["class", "source"],
            registry=r,
        )
        self.provision_duration = Histogram(
            "controller_persistentvolumeclaim_provision_duration_seconds",
            "Time of one provisioning attempt, successful or not.",
            ["class", "source"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.delete_total = Counter(
            "controller_persistentvolume_delete_total",
            "Volumes deleted successfully.",
            ["class"],
            registry=r,
        )
        self.delete_failed_total = Counter(
            "controller_persistentvolume_delete_failed_total",
            "Delete attempts that failed.",
            ["class"],
            registry=r,
        )
        self.delete_duration = Histogram(
            "controller_persistentvolume_delete_duration_seconds",
            "Time of one delete attempt, successful or not.",
            ["class"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.resize_total = Counter(
            "controller_persistentvolumeclaim_resize_total",
            "Claims grown successfully (backend volume, PV and claim status).",
            ["class"],
            registry=r,
        )
        self.resize_failed_total = Counter(
            "controller_persistentvolumeclaim_resize_failed_total",
            "Resize attempts that failed.",
            ["class"],
            registry=r,
        )
        self.resize_duration = Histogram(
            "controller_persistentvolumeclaim_resize_duration_seconds",
            "Time of one resize attempt, successful or not.",
            ["class"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "heketi_provisioner_workqueue_depth", "Keys ready to be processed.", registry=r
        )
        self.retries_total = Counter(
            "heketi_provisioner_workqueue_retries_total",
            "Keys re-queued with backoff after a failure.",
            registry=r,
        )
        self.repairs_total = Counter(
            "heketi_provisioner_repairs_total",
            "Endpoints/Service pairs re-created for bound volumes.",
            registry=r,
        )
        self.orphans_reclaimed_total = Counter(
            "heketi_provisioner_orphans_reclaimed_total",
            "Heketi volumes deleted by the orphan sweep (no claim and no PV named them).",
            registry=r,
        )
        self.orphan_sweeps_total = Counter(
            "heketi_provisioner_orphan_sweeps_total",
            "Orphan sweeps run (each lists the intent records once), failed ones included.",
            registry=r,
        )
        self.heketi_requests_total = Counter(
            "heketi_provisioner_heketi_requests_total",
            "HTTP requests to Heketi (retries and queue polls included), by route and status.",
            ["operation", "status"],
            registry=r,
        )
        self.heketi_request_duration = Histogram(
            "heketi_provisioner_heketi_request_duration_seconds",
            "Time of one HTTP request to Heketi, answered or not.",
            ["operation"],
            buckets=_REQUEST_BUCKETS,
            registry=r,
        )
        self.claim_bound = Histogram(
            "heketi_provisioner_claim_bound_seconds",
            "From a claim's creation to this controller seeing it Bound to a PV it provisioned.",
            ["class"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.leader = Gauge(
            "heketi_provisioner_leader",
            "1 while this replica holds the leader Lease (or runs without election), else 0.",
            registry=r,
        )

    def observe_heketi(self, method: str, route: str, status: int | None, seconds: float) -> None:
        """``heketi_client``'s ``on_response`` hook: it passes route templates, not URLs."""
        operation = f"{method} {route}"
        self.heketi_requests_total.labels(
            operation=operation, status=NO_ANSWER if status is None else str(status)
        ).inc()
        self.heketi_request_duration.labels(operation=operation).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HealthServer:
    """``/metrics``; ``/healthz``: the loops are not wedged (``problems`` is empty, and
    the body lists what is wrong otherwise); ``/readyz``: ``ready()``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        metrics: Metrics,
        ready: Callable[[], bool],
        problems: Callable[[], list[str]] = list,
    ) -> None:
        self._metrics = metrics
        self._ready = ready
        self._problems = problems
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(200, outer._metrics.render(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    found = outer._problems()
                    body = "".join(f"{p}\n" for p in found) or "ok\n"
                    self._reply(503 if found else 200, body.encode())
                elif path == "/readyz":
                    ok = outer._ready()
                    self._reply(200 if ok else 503, b"ok\n" if ok else b"not ready\n")
                else:
                    self._reply(404, b"not found\n")

            def _reply(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes every few seconds would drown the useful lines

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health-server", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_health_server(
    address: str,
    *,
    metrics: Metrics,
    ready: Callable[[], bool],
    problems: Callable[[], list[str]] = list,
) -> HealthServer | None:
    """Started server, or None when the address disables it."""
    parsed = parse_address(address)
    if parsed is None:
        return None
    server = HealthServer(parsed[0], parsed[1], metrics=metrics, ready=ready, problems=problems)
    server.start()
    return server


_SECRET_FIELDS = frozenset({"key", "admin_key", "user_key", "password", "token", "restuserkey"})


def _redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Last line of defence: a field that looks like a credential is never printed."""
    for name in event.keys() & _SECRET_FIELDS:
        event[name] = "[redacted]"
    return event


_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape_controls(text: str) -> str:
    """``text`` with control characters written as escapes (``\\n``, ``\\x1b``,
    ``\\u202e``): the one treatment of tenant-written strings (claim names, a
    ``dataSource`` name) before they reach an event or a console log line.

    A tenant must not be able to start a new log line (forging one that seems to come
    from the controller), move the cursor or recolour a terminal (ANSI escapes), or
    reorder what a reader sees (Unicode line separators and bidirectional overrides).
    JSON logs escape the C0 controls themselves; events and console lines do not.
    """
    return _CONTROLS.sub(_escaped, text)


def _escape_fields(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Console lines: every string field escaped (``escape_controls``); other values
    are printed with ``repr``, which escapes them already."""
    for name, value in event.items():
        if isinstance(value, str) and name != "exception":
            event[name] = escape_controls(value)
    return event


_HANDLER_NAME = "heketi-provisioner"


def _exception_formatter() -> structlog.typing.ExceptionRenderer:
    """A traceback without local variables, whatever is installed.

    structlog's default, when ``rich`` is importable, prints every frame's locals, and
    a frame handling a request holds the Heketi key in one: it reached a log that way.
    ``_redact`` only sees the event's fields, never the traceback's contents.
    """
    try:
        import rich  # noqa: F401
    except ImportError:
        return structlog.dev.plain_traceback
    return structlog.dev.RichTracebackFormatter(show_locals=False)


def configure_logging(
    log_format: str = "auto", level: str = "info", *, stream: TextIO | None = None
) -> None:
    """JSON lines for collectors, readable lines on a terminal; chosen once at start.

    Everything in ``provisioner`` logs through structlog, with an event name and
    fields. ``heketi_client``, a plain library, logs through the standard library;
    its lines go through the same processors, so they are rendered alike and carry
    the bound claim context too (otherwise they would reach Python's bare
    last-resort handler and lose both).
    """
    out = stream or sys.stdout
    if log_format == "auto":
        log_format = "console" if out.isatty() else "json"
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(
            colors=out.isatty(), exception_formatter=_exception_formatter()
        )
    )
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    if log_format == "json":
        processors.append(structlog.processors.format_exc_info)
    else:
        processors.append(_escape_fields)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(out),  # one write per line: no interleaving
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                # heketi_client, a plain library, puts its fields in ``extra``.
                structlog.stdlib.ExtraAdder(),
                *processors,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)  # configured twice (tests): replace, never duplicate
    root.addHandler(handler)
    # Libraries stay at WARNING whatever the level: urllib3 and the kubernetes client
    # log URLs and response bodies (a Secret's data among them) at DEBUG.
    root.setLevel(max(numeric, logging.WARNING))
    # Our own client: it logs method, path, status and timing, never bodies or keys.
    logging.getLogger("heketi_client").setLevel(numeric)

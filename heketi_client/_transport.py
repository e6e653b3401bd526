"""The one place where HTTP requests are made: sign, send, read, map errors, retry, log.

Everything above this module speaks in paths and our exception tree; nothing above
it sees ``requests`` exceptions or decides about retries.

Every exchange is bounded three ways, so that a hostile or broken server (or whatever
sits at the configured URL) cannot hold a thread or memory: the per-read timeouts,
an overall ``request_deadline`` (see ``_deadline``), and ``max_body_bytes``: bodies
are streamed and reading stops past the cap, so a server cannot make us buffer
gigabytes. The deadline is for the whole logical request, retries and the waits
between them included: each attempt gets what is left of it, and no retry is made
whose wait would end past it. (Bounding each attempt alone let a server trickling
bytes hold a thread for ``attempts`` times the deadline, plus the waits: five
minutes for an idempotent GET with the defaults.) Requests only ever go to the base
URL's origin (``url_for`` only appends paths); a ``Location`` from Heketi goes through
``_locations`` first.

Callers that want figures (request counts, latency) pass a ``ResponseObserver``: it is
told about every HTTP exchange, retries and queue polls included, by route template
(``GET /queue/{id}``) rather than by URL, so that whatever aggregates the calls (a
Prometheus client, in the provisioner) gets few, credential-free label values without
this package depending on it.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit

import requests
import tenacity
import urllib3.exceptions
from requests.auth import AuthBase

from heketi_client._deadline import RequestWatch
from heketi_client._locations import resolve_location
from heketi_client._urls import origin_of, redact_url, route_template
from heketi_client.errors import (
    HeketiAPIError,
    HeketiConnectionError,
    HeketiError,
    HeketiTimeout,
    OutcomeUnknown,
    ResponseTooLarge,
    _error_from_response,
)
from heketi_client.retries import RetryPolicy

log = logging.getLogger(__name__)

Timeout = float | tuple[float, float]

ResponseObserver = Callable[[str, str, int | None, float], None]
"""``(method, route template, status or None when no answer came, seconds)``."""

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
"""Largest response body read (bytes). The largest answers Heketi gives are lists of
ids and node descriptions: 50,000 volume ids at ~35 bytes each are 1.75 MB, and a node
of a full cluster (1,000 volumes of up to 32 bricks over three nodes, ~330 bytes per
brick) about 3.5 MB. 8 MiB leaves room above both and still bounds memory per request."""

DEFAULT_REQUEST_DEADLINE = 60.0
"""Seconds one logical HTTP request may take in all: every attempt (connect and whole
body included) and the waits between retries."""

_CHUNK = 64 * 1024

AMBIGUOUS_STATUSES = frozenset({502, 503, 504})
"""Proxy answers meaning "the upstream may have got the request but I have no answer"."""
MAINTENANCE_TEXT = "Service disabled for maintenance"
"""Heketi's own 503, answered before it does anything: safe to send again."""


def _may_have_been_applied(status: int, error: HeketiAPIError) -> bool:
    if status == 503 and error.message.startswith(MAINTENANCE_TEXT):
        return False
    return status in AMBIGUOUS_STATUSES


_UNSENDABLE = (
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
)
"""Refused by ``requests`` before any connection: a configuration error, never retried."""


def _nothing_was_sent(error: requests.RequestException) -> bool:
    """True when the connection never opened, so Heketi cannot have seen the request."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason: object = error.args[0] if error.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    if isinstance(error, requests.exceptions.SSLError):
        # requests also raises SSLError for a TLS failure while reading the answer,
        # after the request went out; only a refused certificate or a peer that does
        # not speak TLS proves that the handshake, and so the request, never happened.
        return _handshake_failed(reason)
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


_HANDSHAKE_ONLY = frozenset({"WRONG_VERSION_NUMBER"})
"""OpenSSL reasons only a handshake produces (here: the server answered in plain HTTP)."""


def _handshake_failed(reason: object) -> bool:
    """Whether ``reason`` (urllib3's SSLError, or what it wraps) ended the handshake."""
    for _ in range(3):
        if isinstance(reason, ssl.SSLCertVerificationError):
            return True
        if isinstance(reason, ssl.SSLError) and getattr(reason, "reason", None) in _HANDSHAKE_ONLY:
            return True
        if not isinstance(reason, BaseException) or not reason.args:
            return False
        reason = reason.args[0]
    return False


class _DeadlinePassed(Exception):
    """The request's overall deadline passed while its body was being read."""


class Transport:
    """Sends single requests to one Heketi server, with retries."""

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session,
        auth: AuthBase | None,
        timeout: Timeout,
        verify: bool | str,
        retry: RetryPolicy,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        request_deadline: float = DEFAULT_REQUEST_DEADLINE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_response: ResponseObserver | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.where = redact_url(self.base_url)
        self.origin = origin_of(self.base_url)
        self.prefix = urlsplit(self.base_url).path.rstrip("/")
        self.session = session
        self.auth = auth
        self.timeout = timeout
        self.verify = verify
        self.retry = retry
        self.max_body_bytes = max_body_bytes
        self.request_deadline = request_deadline
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._on_response = on_response

    def url_for(self, path: str) -> str:
        """Our base URL plus a path; the only way a URL is made, so the origin is fixed."""
        if not path.startswith("/") or path.startswith("//"):
            raise ValueError(f"not a path below the Heketi URL: {path!r}")
        return self.base_url + path

    def relative_path(self, url: str) -> str:
        """The path of one of our request URLs, without the base URL's prefix."""
        path = urlsplit(url).path
        if self.prefix and path.startswith(self.prefix + "/"):
            path = path[len(self.prefix) :]
        return path

    def resolve_location(self, location: str, *, method: str, path: str, status: int) -> str:
        """The path below our base URL that Heketi's ``Location`` names (see ``_locations``)."""
        return resolve_location(
            location, base_url=self.base_url, method=method, path=path, status=status
        )

    def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        idempotent: bool,
        accept: Collection[int] = (),
    ) -> requests.Response:
        """One logical request; answers below 400 or in ``accept`` are returned as is.

        The returned response has its whole body read already (``content``, ``text``
        and ``json()`` work; no connection is held). Raises the mapped ``HeketiError``
        once retries are spent or not allowed, and ``OutcomeUnknown`` when a
        non-idempotent request may have reached Heketi.
        """
        policy = self.retry
        ends = self._clock() + self.request_deadline
        planned = [0.0]  # the wait chosen by ``retry`` for ``wait`` to return

        def retry(state: tenacity.RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome else None
            if error is None or not policy.should_retry(error, idempotent=idempotent):
                return False
            delay = policy.wait(state.attempt_number, error, self._rng)
            if self._clock() + delay >= ends:
                return False  # the next try would start past the deadline: give up now
            planned[0] = delay
            return True

        def wait(state: tenacity.RetryCallState) -> float:
            return planned[0]

        def announce(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                "attempt %d/%d failed: %s; retrying in %.1f s",
                state.attempt_number,
                policy.attempts,
                error,
                delay,
                extra={"method": method, "path": path},
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=wait,
            retry=retry,
            before_sleep=announce,
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self._send_once, method, path, json, idempotent, frozenset(accept), ends)

    def _send_once(
        self,
        method: str,
        path: str,
        json: Any,
        idempotent: bool,
        accept: frozenset[int],
        ends: float,
    ) -> requests.Response:
        started = self._clock()
        try:
            response = self._exchange(method, path, json, idempotent, ends - started)
        except HeketiError as error:
            self._record(method, path, error.status, started)
            raise
        status = response.status_code
        self._record(method, path, status, started)
        if status < 400 or status in accept:
            return response
        api_error = _error_from_response(response, self.where, method, path)
        if not idempotent and _may_have_been_applied(status, api_error):
            raise OutcomeUnknown(
                f"{method} {path} may or may not have been applied: {status}: {api_error.message}",
                method=method,
                path=path,
                status=status,
            ) from api_error
        raise api_error

    def _record(self, method: str, path: str, status: int | None, started: float) -> None:
        elapsed = self._clock() - started
        self._observe(method, path, status, elapsed)
        log.debug(
            "heketi request %s %s: %s in %.1f ms",
            method,
            path,
            "no answer" if status is None else status,
            elapsed * 1000,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(elapsed * 1000, 1),
            },
        )

    def _exchange(
        self, method: str, path: str, json: Any, idempotent: bool, budget: float
    ) -> requests.Response:
        """Send, then read the whole body within the cap and what is left of the
        deadline (``budget`` seconds)."""
        if budget <= 0:  # nothing left to try with: this attempt sends nothing
            raise HeketiTimeout(
                f"no complete answer to {method} {path} to Heketi at {self.where} within "
                f"the request deadline of {self.request_deadline:g} s",
                method=method,
                path=path,
            )
        with RequestWatch(min(budget, self.request_deadline)) as watch:
            try:
                response = self.session.request(
                    method,
                    self.url_for(path),
                    json=json,
                    auth=self.auth,
                    timeout=self.timeout,
                    verify=self.verify,
                    allow_redirects=False,
                    stream=True,
                )
            except requests.RequestException as error:
                raise self._map_exception(error, method, path, idempotent, watch) from error
            status = response.status_code
            try:
                response._content = self._read_body(response, watch, method, path)
            except ResponseTooLarge as error:
                response.close()
                if idempotent:
                    raise
                raise OutcomeUnknown(
                    f"{method} {path} may or may not have been applied: {error}",
                    method=method,
                    path=path,
                    status=status,
                ) from error
            except _DeadlinePassed as error:
                response.close()
                raise self._deadline_error(method, path, idempotent, status) from error
            except requests.RequestException as error:
                response.close()
                mapped = self._map_exception(error, method, path, idempotent, watch)
                mapped.status = status
                raise mapped from error
            return response

    def _read_body(
        self, response: requests.Response, watch: RequestWatch, method: str, path: str
    ) -> bytes:
        limit = self.max_body_bytes

        def too_large() -> ResponseTooLarge:
            return ResponseTooLarge(limit, method=method, path=path, status=response.status_code)

        declared = response.headers.get("Content-Length", "").strip()
        if declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
            raise too_large()
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(chunk_size=_CHUNK):
            size += len(chunk)
            if size > limit:  # counted after decompression, so no gzip bomb either
                raise too_large()
            chunks.append(chunk)
            if watch.expired:
                raise _DeadlinePassed
        if watch.expired:  # a body without length ends early when its socket is shut
            raise _DeadlinePassed
        return b"".join(chunks)

    def _observe(self, method: str, path: str, status: int | None, seconds: float) -> None:
        """Tell the observer; its failure must never turn into a failed request."""
        if self._on_response is None:
            return
        try:
            self._on_response(method, route_template(path), status, seconds)
        except Exception as error:
            log.warning("response observer failed: %s", type(error).__name__)

    def _deadline_error(
        self, method: str, path: str, idempotent: bool, status: int | None
    ) -> HeketiError:
        what = f"{method} {path} to Heketi at {self.where}"
        late = f"no complete answer within the request deadline of {self.request_deadline:g} s"
        if not idempotent:
            return OutcomeUnknown(
                f"{what} may or may not have been applied: {late}",
                method=method,
                path=path,
                status=status,
            )
        return HeketiTimeout(f"{late} to {what}", method=method, path=path, status=status)

    def _map_exception(
        self,
        error: requests.RequestException,
        method: str,
        path: str,
        idempotent: bool,
        watch: RequestWatch,
    ) -> HeketiError:
        what = f"{method} {path} to Heketi at {self.where}"
        if isinstance(error, _UNSENDABLE):
            return HeketiError(f"cannot send {what}: {_reason(error)}", method=method, path=path)
        if _nothing_was_sent(error):
            return HeketiConnectionError(
                f"could not connect for {what}: {_reason(error)}",
                request_sent=False,
                method=method,
                path=path,
            )
        if watch.expired:
            return self._deadline_error(method, path, idempotent, None)
        if not idempotent:
            return OutcomeUnknown(
                f"{what} may or may not have been applied: the answer was lost ({_reason(error)})",
                method=method,
                path=path,
            )
        if isinstance(error, requests.Timeout):
            read_timeout = self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout
            return HeketiTimeout(
                f"no answer to {what} within {read_timeout:g} s", method=method, path=path
            )
        return HeketiConnectionError(
            f"{what} failed: {_reason(error)}", request_sent=True, method=method, path=path
        )


def _reason(error: requests.RequestException) -> str:
    """A short cause without the URL noise urllib3 wraps around it."""
    reason: object = error.args[0] if error.args else error
    if isinstance(reason, urllib3.exceptions.MaxRetryError) and reason.reason is not None:
        reason = reason.reason
    text = str(reason) or type(error).__name__
    return text if len(text) <= 200 else text[:200] + "..."


__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_REQUEST_DEADLINE",
    "ResponseObserver",
    "Timeout",
    "Transport",
    "route_template",
]

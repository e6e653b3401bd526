"""The one place where HTTP requests are made: sign, send, map errors, retry, log.

Everything above this module speaks in paths and our exception tree; nothing above
it sees ``requests`` exceptions or decides about retries.

Callers that want figures (request counts, latency) pass a ``ResponseObserver``: it is
told about every HTTP exchange, retries and queue polls included, by route template
(``GET /queue/{id}``) rather than by URL, so that whatever aggregates the calls (a
Prometheus client, in the provisioner) gets few, credential-free label values without
this package depending on it.
"""

from __future__ import annotations

import random
import re
import ssl
import time
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
import tenacity
import urllib3.exceptions
from requests.auth import AuthBase

from heketi_client.errors import (
    HeketiAPIError,
    HeketiConnectionError,
    HeketiError,
    HeketiTimeout,
    OutcomeUnknown,
    error_from_response,
)
from heketi_client.retries import RetryPolicy

log = structlog.get_logger("heketi_client")

Timeout = float | tuple[float, float]

ResponseObserver = Callable[[str, str, int | None, float], None]
"""``(method, route template, status or None when no answer came, seconds)``."""

_ID_SEGMENT = re.compile(r"^[0-9a-fA-F]{8,}$")

AMBIGUOUS_STATUSES = frozenset({502, 503, 504})
"""Answers a proxy may give after the request already reached Heketi."""
MAINTENANCE_TEXT = "Service disabled for maintenance"
"""Heketi's own 503, answered before it does anything: safe to send again."""


def _may_have_been_applied(status: int, error: HeketiAPIError) -> bool:
    if status == 503 and error.message.startswith(MAINTENANCE_TEXT):
        return False
    return status in AMBIGUOUS_STATUSES


"""Proxy answers meaning "the upstream may have got the request but I have no answer"."""


def redact_url(url: str) -> str:
    """The URL without any ``user:password@`` part, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()


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


def route_template(path: str) -> str:
    """``/volumes/<32 hex>/expand?x`` -> ``/volumes/{id}/expand``: a bounded label value.

    Heketi ids (volumes, clusters, nodes, devices, queue entries) are 32 hex digits;
    the fixed segments of its API are words, none of them eight or more hex digits,
    so such runs are ids. Absolute URLs (a Location header) lose scheme and host, so
    neither a host nor a ``user:password@`` part can reach the result.
    """
    route = urlsplit(path).path if path.startswith(("http://", "https://")) else path
    route = route.split("?", 1)[0].split("#", 1)[0]
    segments = ["{id}" if _ID_SEGMENT.match(s) else s for s in route.strip("/").split("/")]
    return "/" + "/".join(s for s in segments if s)


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
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_response: ResponseObserver | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.where = redact_url(self.base_url)
        self.session = session
        self.auth = auth
        self.timeout = timeout
        self.verify = verify
        self.retry = retry
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()
        self._on_response = on_response

    def url_for(self, path: str) -> str:
        """Join a host-relative path (as in Heketi's Location) to our base URL."""
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url + "/" + path.lstrip("/")

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

        Raises the mapped ``HeketiError`` once retries are spent or not allowed, and
        ``OutcomeUnknown`` when a non-idempotent request may have reached Heketi.
        """
        policy = self.retry

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return policy.wait(state.attempt_number, error, self._rng)

        def announce(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            delay = state.next_action.sleep if state.next_action else 0.0
            log.warning(
                f"attempt {state.attempt_number}/{policy.attempts} failed: {error}; "
                f"retrying in {delay:.1f} s",
                method=method,
                path=path,
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=wait,
            retry=tenacity.retry_if_exception(
                lambda e: policy.should_retry(e, idempotent=idempotent)
            ),
            before_sleep=announce,
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self._send_once, method, path, json, idempotent, frozenset(accept))

    def _send_once(
        self,
        method: str,
        path: str,
        json: Any,
        idempotent: bool,
        accept: frozenset[int],
    ) -> requests.Response:
        started = self._clock()
        try:
            response = self.session.request(
                method,
                self.url_for(path),
                json=json,
                auth=self.auth,
                timeout=self.timeout,
                verify=self.verify,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            elapsed = self._clock() - started
            self._observe(method, path, None, elapsed)
            log.debug(
                "heketi request failed",
                method=method,
                path=path,
                error=type(error).__name__,
                duration_ms=round(elapsed * 1000, 1),
            )
            raise self._map_exception(error, method, path, idempotent) from error
        status = response.status_code
        elapsed = self._clock() - started
        self._observe(method, path, status, elapsed)
        log.debug(
            "heketi request",
            method=method,
            path=path,
            status=status,
            duration_ms=round(elapsed * 1000, 1),
        )
        if status < 400 or status in accept:
            return response
        api_error = error_from_response(response, self.where)
        if not idempotent and _may_have_been_applied(status, api_error):
            raise OutcomeUnknown(
                f"{method} {path} may or may not have been applied: {api_error}"
            ) from api_error
        raise api_error

    def _observe(self, method: str, path: str, status: int | None, seconds: float) -> None:
        """Tell the observer; its failure must never turn into a failed request."""
        if self._on_response is None:
            return
        try:
            self._on_response(method, route_template(path), status, seconds)
        except Exception as error:
            log.warning("response observer failed", error=type(error).__name__)

    def _map_exception(
        self, error: requests.RequestException, method: str, path: str, idempotent: bool
    ) -> HeketiError:
        what = f"{method} {path} to Heketi at {self.where}"
        if isinstance(error, _UNSENDABLE):
            return HeketiError(f"cannot send {what}: {_reason(error)}")
        if _nothing_was_sent(error):
            return HeketiConnectionError(
                f"could not connect for {what}: {_reason(error)}", request_sent=False
            )
        if not idempotent:
            return OutcomeUnknown(
                f"{what} may or may not have been applied: the answer was lost ({_reason(error)})"
            )
        if isinstance(error, requests.Timeout):
            read_timeout = self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout
            return HeketiTimeout(f"no answer to {what} within {read_timeout:g} s")
        return HeketiConnectionError(f"{what} failed: {_reason(error)}", request_sent=True)


def _reason(error: requests.RequestException) -> str:
    """A short cause without the URL noise urllib3 wraps around it."""
    reason: object = error.args[0] if error.args else error
    if isinstance(reason, urllib3.exceptions.MaxRetryError) and reason.reason is not None:
        reason = reason.reason
    text = str(reason) or type(error).__name__
    return text if len(text) <= 200 else text[:200] + "..."

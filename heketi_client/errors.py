"""Everything the client raises, and how an HTTP answer becomes one of them.

Callers branch on the *type*, never on message text: Heketi reports most failures as
plain-text bodies, and the matching on that text happens here, once. Every class is
also importable from the package top (``from heketi_client import NotFound``).

::

    HeketiError(method, path, status)     anything this package raises on purpose
    ├── HeketiAPIError(status, message)   Heketi (or a proxy) answered with an error
    │   ├── BadRequest                    400 / 422: Heketi refused the input
    │   ├── Unauthorized                  401: missing or wrong key, clock skew, "user" issuer
    │   ├── NotFound                      404 "Id not found": Heketi has no such id
    │   ├── UnexpectedNotFound            any other 404: wrong URL or path prefix, a proxy
    │   ├── Conflict                      409: e.g. deleting heketidbstorage
    │   ├── Throttled(retry_after)        429: too many operations in flight
    │   └── ServerError                   5xx
    │       ├── AllocationFailed          500 "Failed to allocate ...": nothing was created
    │       │   ├── NoSpace               ... "No space"
    │       │   └── VolumeNameInUse       ... "Volume name '<n>' already in use"
    │       └── ServiceUnavailable        503: e.g. "Service disabled for maintenance"
    ├── HeketiConnectionError             no HTTP answer at all (refused, reset, DNS, TLS)
    ├── HeketiTimeout                     no complete answer in time, to a request that
    │                                     was safe to drop (read timeout or deadline)
    ├── UnexpectedResponse                a success answer we will not or cannot read
    │   ├── ResponseTooLarge(limit)       ... its body is over ``max_body_bytes``
    │   ├── MalformedResponse(field)      ... JSON with a missing or mistyped field, a bad id
    │   └── UnreadableVolume(volume_id)   ... ``get_volume`` of one volume (any reason above)
    ├── OperationFailed(message)          the async operation ran and failed (queue 500);
    │                                     Heketi rolled it back
    └── OutcomeUnknown                    a mutating request may or may not have taken effect
        ├── OperationTimeout(location)    ... because the operation outlived our deadline
        └── ForeignLocation               ... because Heketi accepted it (202) but pointed us
                                          elsewhere; also an UnexpectedResponse

Every error has ``method``, ``path`` and ``status`` attributes: the request it is about
(path relative to the base URL) and the HTTP status of the answer, ``None`` where no
answer came (or, for errors raised before any request, where there was no request).

Messages carry at most ``BODY_LIMIT`` characters of a response body, and never any
request header: the Heketi key can only reach a message through a header, so keeping
headers out keeps the key out. Anything shaped like a bearer token (a JWT, or an
``Authorization: Bearer`` line) is replaced by ``[redacted]`` before it reaches a
message, in case a proxy echoes our request back in its error page.
"""

from __future__ import annotations

import re

import requests

__all__ = [
    "BODY_LIMIT",
    "AllocationFailed",
    "BadRequest",
    "Conflict",
    "ForeignLocation",
    "HeketiAPIError",
    "HeketiConnectionError",
    "HeketiError",
    "HeketiTimeout",
    "MalformedResponse",
    "NoSpace",
    "NotFound",
    "OperationFailed",
    "OperationTimeout",
    "OutcomeUnknown",
    "ResponseTooLarge",
    "ServerError",
    "ServiceUnavailable",
    "Throttled",
    "Unauthorized",
    "UnexpectedNotFound",
    "UnexpectedResponse",
    "UnreadableVolume",
    "VolumeNameInUse",
]

BODY_LIMIT = 300
"""Longest piece of a response body quoted in a message (characters)."""

_ID_NOT_FOUND = "Id not found"
"""Heketi's whole body (plus a newline) when it has no object with the id asked for."""

_NAME_IN_USE = re.compile(r"Volume name '([^']*)' already in use")

# A JWT is three base64url segments; its header and claims are JSON objects, so both
# start with "eyJ" ('{"'). Tokens signed elsewhere may serialise differently, hence the
# second, length-based pattern (hostnames rarely have three labels of 20+ characters).
_JWT = re.compile(
    r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
    r"|[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{20,}"
)
_AUTH_HEADER = re.compile(r"(?i)(authorization\s*[:=]\s*)[^\r\n]*")
_BEARER = re.compile(r"(?i)(bearer\s+)[^\s,;\"']+")
_REDACTED = "[redacted]"


def _redact(text: str) -> str:
    """Remove credentials a proxy may have echoed from our request into its answer."""
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + _REDACTED, text)
    text = _BEARER.sub(lambda m: m.group(1) + _REDACTED, text)
    return _JWT.sub(_REDACTED, text)


class HeketiError(Exception):
    """Root of the tree, so that callers can catch everything from this package."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> None:
        message = _redact(message)
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.status = status

    @property
    def request(self) -> str | None:
        """``"GET /volumes/<id>"``, when the error is about one request."""
        if self.method is None or self.path is None:
            return None
        return f"{self.method} {self.path}"


class HeketiAPIError(HeketiError):
    """Heketi (or something in front of it) answered, with an error status."""

    status: int

    def __init__(
        self, status: int, message: str, *, method: str | None = None, path: str | None = None
    ) -> None:
        super().__init__(message, method=method, path=path, status=status)

    def __str__(self) -> str:
        request = self.request
        text = f"{self.status}: {self.message}"
        return text if request is None else f"{text} (answer to {request})"

    def __repr__(self) -> str:
        extra = "" if self.request is None else f", method={self.method!r}, path={self.path!r}"
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r}{extra})"


class BadRequest(HeketiAPIError):
    """400/422: Heketi refused the request as given; repeating it cannot help."""


class Unauthorized(HeketiAPIError):
    """401: the token was missing, wrongly signed, expired, or the issuer lacks rights."""


class NotFound(HeketiAPIError):
    """404 with Heketi's own ``Id not found``: the id does not exist (any more).

    Only this answer proves absence, so only it may be read as "already deleted".
    """


class UnexpectedNotFound(HeketiAPIError):
    """A 404 that is not Heketi's ``Id not found``: an HTML page, an empty body, ...

    Heketi's router answers a path it does not know with 404 too, and so does a proxy
    whose route does not lead to Heketi. Neither says anything about the volume, so this
    is deliberately *not* a ``NotFound``: treating it as "gone" would delete a PV
    whose volume still exists.
    """


class Conflict(HeketiAPIError):
    """409: Heketi refuses because of the object's state."""


class Throttled(HeketiAPIError):
    """429: Heketi has too many operations in flight; the request was not accepted."""

    def __init__(
        self,
        status: int,
        message: str,
        retry_after: float | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(status, message, method=method, path=path)
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"Throttled(status={self.status!r}, message={self.message!r}, "
            f"retry_after={self.retry_after!r})"
        )


class ServerError(HeketiAPIError):
    """5xx: Heketi (or a proxy) failed to handle the request."""


class AllocationFailed(ServerError):
    """500 on a create/expand: allocation failed before anything was made."""


class NoSpace(AllocationFailed):
    """No set of devices could hold the requested bricks."""


class VolumeNameInUse(AllocationFailed):
    """The only candidate cluster already has a volume of that name."""

    def __init__(
        self,
        status: int,
        message: str,
        name: str | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(status, message, method=method, path=path)
        self.name = name


class ServiceUnavailable(ServerError):
    """503: Heketi (or a proxy) is not serving requests right now."""


class HeketiConnectionError(HeketiError):
    """No HTTP answer. ``request_sent`` says whether Heketi may have seen the request."""

    def __init__(
        self,
        message: str,
        *,
        request_sent: bool,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.request_sent = request_sent


class HeketiTimeout(HeketiError):
    """No complete answer within the read timeout or the per-request deadline."""


class OperationFailed(HeketiError):
    """The queued operation failed in the backend; Heketi rolled it back.

    Not a ``HeketiAPIError``: our poll was answered fine, with the news that the
    operation (accepted earlier) failed. ``status`` is the queue's 500.
    """


class UnexpectedResponse(HeketiError):
    """Heketi answered with success but a body we will not or cannot read."""


class ResponseTooLarge(UnexpectedResponse):
    """The body was longer than ``limit`` bytes; reading stopped there."""

    def __init__(
        self,
        limit: int,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> None:
        what = "the answer" if method is None else f"the answer to {method} {path}"
        super().__init__(
            f"{what} is larger than max_body_bytes={limit}; refusing to read more "
            "(raise the limit if Heketi really holds that much)",
            method=method,
            path=path,
            status=status,
        )
        self.limit = limit


class MalformedResponse(UnexpectedResponse):
    """Heketi's JSON lacks a field or has one of the wrong type (or an id that is not one).

    ``field`` is the path into the document (``bricks[2].size``), ``expected`` what it
    should have been.
    """

    def __init__(
        self,
        field: str,
        expected: str,
        found: str,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(
            f"field {field!r} should be {expected}, found {found}",
            method=method,
            path=path,
            status=status,
        )
        self.field = field
        self.expected = expected
        self.found = found

    def __str__(self) -> str:
        request = self.request
        return self.message if request is None else f"{self.message} (answer to {request})"


class UnreadableVolume(UnexpectedResponse):
    """``get_volume`` got a success answer it cannot use; the reason is ``__cause__``.

    One class for every reason, so that a caller reading many volumes (an index
    refresh) can skip this one volume and go on, as it skips a ``NotFound``.
    """

    def __init__(
        self, volume_id: str, reason: str, *, path: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(
            f"volume {volume_id} cannot be read: {reason}",
            method="GET",
            path=path,
            status=status,
        )
        self.volume_id = volume_id


class OutcomeUnknown(HeketiError):
    """A mutating request may or may not have taken effect.

    Re-sending blindly could create a second volume (or expand twice), so the caller
    must look first: for a create, find the volume by name; for a delete, get it.
    """


class OperationTimeout(OutcomeUnknown):
    """The operation was accepted but had not finished by the deadline.

    ``location`` is the queue path, should a caller want to keep polling it.
    """

    def __init__(
        self, message: str, *, location: str, method: str | None = None, path: str | None = None
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.location = location


class ForeignLocation(OutcomeUnknown, UnexpectedResponse):
    """Heketi's ``Location`` pointed away from the server we were configured with.

    Following it would send a freshly signed token (and our polling) to another
    origin, so we refuse: another scheme, host or port, a path outside the base URL's
    path, or anything but a plain path. It is an ``OutcomeUnknown`` because it can only
    come after Heketi accepted a mutating request (202) or finished it (303): the
    create (or delete, expand, clone) may well have happened, so a caller must look the
    volume up by name, as after any lost answer, rather than assume nothing was done.
    ``base_origin`` and ``offered_origin`` are ``scheme://host:port``.
    """

    def __init__(
        self,
        message: str,
        *,
        base_origin: str,
        offered_origin: str,
        method: str | None = None,
        path: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path, status=status)
        self.base_origin = base_origin
        self.offered_origin = offered_origin


def _truncate(text: str, limit: int = BODY_LIMIT) -> str:
    """Keep messages readable: error pages can be many kilobytes."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[:limit] + f"... ({len(text) - limit} more characters)"


def _describe_body(response: requests.Response, where: str) -> str:
    """The message to show for an error response, whatever its body looks like."""
    content_type = response.headers.get("Content-Type", "").lower()
    text = response.text
    head = text.lstrip()[:100].lower()
    if "html" in content_type or head.startswith(("<!doctype html", "<html")):
        return (
            f"Heketi at {where} answered {response.status_code} with an HTML page; "
            "is the URL right, or is a proxy in the way?"
        )
    if not text.strip():
        reason = response.reason or "no reason given"
        return f"empty body ({reason})"
    # Redact before cutting, so that a token split by the cut is still recognised.
    return _truncate(_redact(text))


def _parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; HTTP dates are rare enough to ignore."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds < float("inf") else None


def _error_from_response(
    response: requests.Response, where: str, method: str, path: str
) -> HeketiAPIError:
    """Map an error answer to the most specific class in the tree above."""
    status = response.status_code
    message = _describe_body(response, where)
    request = {"method": method, "path": path}
    if status in (400, 422):
        return BadRequest(status, message, **request)
    if status == 401:
        return Unauthorized(status, message, **request)
    full_text = response.text.strip()
    if status == 404:
        if full_text == _ID_NOT_FOUND:
            return NotFound(status, message, **request)
        return UnexpectedNotFound(
            status,
            f"{message} -- not Heketi's own {_ID_NOT_FOUND!r} answer, so it says nothing "
            f"about the object: is the URL {where} right (resturl, path prefix)?",
            **request,
        )
    if status == 409:
        return Conflict(status, message, **request)
    if status == 429:
        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        return Throttled(status, message, retry_after, **request)
    if status == 503:
        return ServiceUnavailable(status, message, **request)
    if status == 500 and full_text.startswith("Failed to allocate"):
        in_use = _NAME_IN_USE.search(full_text)
        if in_use is not None:
            return VolumeNameInUse(status, message, in_use.group(1), **request)
        if "No space" in full_text:
            return NoSpace(status, message, **request)
        return AllocationFailed(status, message, **request)
    if status >= 500:
        return ServerError(status, message, **request)
    return HeketiAPIError(status, message, **request)

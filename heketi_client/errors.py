"""Everything the client raises, and how an HTTP answer becomes one of them.

Callers branch on the *type*, never on message text: Heketi reports most failures as
plain-text bodies, and the matching on that text happens here, once.

::

    HeketiError                      anything this package raises on purpose
    ├── HeketiAPIError(status, message)   Heketi (or a proxy) answered with an error
    │   ├── BadRequest               400 / 422: Heketi refused the input
    │   ├── Unauthorized             401: missing or wrong key, clock skew, "user" issuer
    │   ├── NotFound                 404: no such id (or not a path Heketi knows)
    │   ├── Conflict                 409: e.g. deleting heketidbstorage
    │   ├── Throttled(retry_after)   429: too many operations in flight
    │   ├── AllocationFailed         500 "Failed to allocate ...": nothing was created
    │   │   ├── NoSpace              ... "No space"
    │   │   └── VolumeNameInUse      ... "Volume name '<n>' already in use"
    │   └── ServiceUnavailable       503: e.g. "Service disabled for maintenance"
    ├── HeketiConnectionError        no HTTP answer at all (refused, reset, DNS, TLS)
    ├── HeketiTimeout                no answer in time to a request that was safe to drop
    ├── UnexpectedResponse           a success answer whose body we cannot read
    ├── OperationFailed(message)     the async operation ran and failed (queue 500);
    │                                Heketi rolled it back
    └── OutcomeUnknown               a mutating request may or may not have taken effect
        └── OperationTimeout         ... because the operation outlived our deadline

Messages carry at most ``BODY_LIMIT`` characters of a response body, and never any
request header: the Heketi key can only reach a message through a header, so keeping
headers out keeps the key out.
"""

from __future__ import annotations

import re

import requests

BODY_LIMIT = 300
"""Longest piece of a response body quoted in a message (characters)."""

_NAME_IN_USE = re.compile(r"Volume name '([^']*)' already in use")


class HeketiError(Exception):
    """Root of the tree, so that callers can catch everything from this package."""


class HeketiAPIError(HeketiError):
    """Heketi (or something in front of it) answered, with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status!r}, message={self.message!r})"


class BadRequest(HeketiAPIError):
    """400/422: Heketi refused the request as given; repeating it cannot help."""


class Unauthorized(HeketiAPIError):
    """401: the token was missing, wrongly signed, expired, or the issuer lacks rights."""


class NotFound(HeketiAPIError):
    """404: the id does not exist (any more). For a delete this means "already done"."""


class Conflict(HeketiAPIError):
    """409: Heketi refuses because of the object's state."""


class Throttled(HeketiAPIError):
    """429: Heketi has too many operations in flight; the request was not accepted."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(status, message)
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return (
            f"Throttled(status={self.status!r}, message={self.message!r}, "
            f"retry_after={self.retry_after!r})"
        )


class AllocationFailed(HeketiAPIError):
    """500 on a create/expand: allocation failed before anything was made."""


class NoSpace(AllocationFailed):
    """No set of devices could hold the requested bricks."""


class VolumeNameInUse(AllocationFailed):
    """The only candidate cluster already has a volume of that name."""

    def __init__(self, status: int, message: str, name: str | None = None) -> None:
        super().__init__(status, message)
        self.name = name


class ServiceUnavailable(HeketiAPIError):
    """503: Heketi (or a proxy) is not serving requests right now."""


class HeketiConnectionError(HeketiError):
    """No HTTP answer. ``request_sent`` says whether Heketi may have seen the request."""

    def __init__(self, message: str, *, request_sent: bool) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class HeketiTimeout(HeketiError):
    """Heketi did not answer within the configured timeout."""


class OperationFailed(HeketiError):
    """The queued operation failed in the backend; Heketi rolled it back."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnexpectedResponse(HeketiError):
    """Heketi answered with success but a body we cannot read."""


class OutcomeUnknown(HeketiError):
    """A mutating request may or may not have taken effect.

    Re-sending blindly could create a second volume (or expand twice), so the caller
    must look first: for a create, find the volume by name; for a delete, get it.
    """


class OperationTimeout(OutcomeUnknown):
    """The operation was accepted but had not finished by the deadline.

    ``location`` is the queue path, should a caller want to keep polling it.
    """

    def __init__(self, message: str, *, location: str) -> None:
        super().__init__(message)
        self.location = location


def truncate(text: str, limit: int = BODY_LIMIT) -> str:
    """Keep messages readable: error pages can be many kilobytes."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[:limit] + f"... ({len(text) - limit} more characters)"


def describe_body(response: requests.Response, where: str) -> str:
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
    return truncate(text)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; HTTP dates are rare enough to ignore."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def error_from_response(response: requests.Response, where: str) -> HeketiAPIError:
    """Map an error answer to the most specific class in the tree above."""
    status = response.status_code
    message = describe_body(response, where)
    if status in (400, 422):
        return BadRequest(status, message)
    if status == 401:
        return Unauthorized(status, message)
    if status == 404:
        return NotFound(status, message)
    if status == 409:
        return Conflict(status, message)
    if status == 429:
        return Throttled(status, message, parse_retry_after(response.headers.get("Retry-After")))
    if status == 503:
        return ServiceUnavailable(status, message)
    full_text = response.text.strip()
    if status == 500 and full_text.startswith("Failed to allocate"):
        in_use = _NAME_IN_USE.search(full_text)
        if in_use is not None:
            return VolumeNameInUse(status, message, in_use.group(1))
        if "No space" in full_text:
            return NoSpace(status, message)
        return AllocationFailed(status, message)
    return HeketiAPIError(status, message)

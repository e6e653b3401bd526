"""API errors as the real server reports them: an HTTP status with a ``Status`` body.

Clients branch on ``reason`` and ``code`` (and kubectl prints ``message``), so the
wording follows the API server's own messages for the cases the controller meets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .resources import ResourceType

if TYPE_CHECKING:
    from .rbac import Attributes

REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """Raised anywhere below the HTTP layer; the server turns it into a response."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # reason "" leaves it out, as kube-apiserver does for some internal errors
        self.reason = REASONS.get(code, "Unknown") if reason is None else reason
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "code": self.code,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(rt: ResourceType, name: str, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    details.update(extra)
    return details


def qualified(rt: ResourceType) -> str:
    return f"{rt.plural}.{rt.group}" if rt.group else rt.plural


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, f'{qualified(rt)} "{name}" not found', details=_details(rt, name))


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        f'{qualified(rt)} "{name}" already exists',
        reason="AlreadyExists",
        details=_details(rt, name),
    )


def conflict(rt: ResourceType, name: str, why: str | None = None) -> ApiError:
    why = (
        why
        or "the object has been modified; please apply your changes to the latest version "
        "and try again"
    )
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {qualified(rt)} "{name}": {why}',
        reason="Conflict",
        details=_details(rt, name),
    )


def invalid(rt: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """``causes`` are (field path, reason type, message) triples, e.g. FieldValueRequired."""
    text = ", ".join(f"{path}: {message}" for path, _, message in causes)
    kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind  # the qualified GroupKind
    return ApiError(
        422,
        f'{kind} "{name}" is invalid: {text}'
        if len(causes) == 1
        else f'{kind} "{name}" is invalid: [{text}]',
        reason="Invalid",
        details=_details(
            rt,
            name,
            kind=rt.kind,
            causes=[{"reason": kind, "message": msg, "field": path} for path, kind, msg in causes],
        ),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def expired(message: str) -> ApiError:
    return ApiError(410, message, reason="Expired")


def gone_status(message: str) -> dict[str, Any]:
    """The ``Status`` carried by a watch ERROR event when the history is too short."""
    return ApiError(410, message, reason="Expired").status()


def forbidden(attrs: Attributes, reason: str = "") -> ApiError:
    """The 403 a real server answers, in its words (responsewriters.Forbidden)."""
    user = attrs.user.name
    if not attrs.resource_request:
        message = f'forbidden: User "{user}" cannot {attrs.verb} path "{attrs.path}"'
        return ApiError(403, message + (f": {reason}" if reason else ""), details={})
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    why = (
        f'User "{user}" cannot {attrs.verb} resource "{resource}" in API group '
        f'"{attrs.group}" {scope}' + (f": {reason}" if reason else "")
    )
    qualified = f"{attrs.resource}.{attrs.group}" if attrs.group else attrs.resource
    details: dict[str, str] = {}
    if attrs.name:
        details["name"] = attrs.name
    if attrs.group:
        details["group"] = attrs.group
    details["kind"] = attrs.resource
    target = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    return ApiError(403, f"{target} is forbidden: {why}", details=details)

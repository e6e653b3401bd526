"""The gateway's exception tree, mapped from the API server's answers.

::

    KubeAPIError(status, reason, message)
     ├── KubeNotFound        404
     ├── KubeConflict        409 (resourceVersion / uid precondition failed)
     │    └── KubeAlreadyExists   409 with reason AlreadyExists
     ├── KubeForbidden       403 (RBAC: names the verb, resource and namespace refused)
     ├── KubeGone            410 (watch or list resourceVersion too old)
     └── KubeUnavailable     status 0: connection refused/reset, timeout, TLS

Messages are truncated before they reach an exception: a Status body can be long,
and it ends up in events and logs.
"""

from __future__ import annotations

import json
import re

__all__ = [
    "KubeAPIError",
    "KubeAlreadyExists",
    "KubeConflict",
    "KubeForbidden",
    "KubeGone",
    "KubeNotFound",
    "KubeUnavailable",
    "error_from_status",
]

_MESSAGE_LIMIT = 300


class KubeAPIError(Exception):
    """An API call failed; ``status``/``reason`` come from the server's Status body."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message[:_MESSAGE_LIMIT]
        super().__init__(f"{status} {reason}: {self.message}")


class KubeNotFound(KubeAPIError):
    pass


class KubeConflict(KubeAPIError):
    pass


class KubeAlreadyExists(KubeConflict):
    """A subclass of conflict because the API server answers both with 409."""


class KubeGone(KubeAPIError):
    pass


# The authorizer's wording: 'User "u" cannot list resource "r" in API group "g" at the
# cluster scope' or '... in the namespace "n"'.
_DENIED = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]+)" '
    r'in API group "(?P<group>[^"]*)" '
    r'(?:at the cluster scope|in the namespace "(?P<namespace>[^"]*)")'
)


class KubeForbidden(KubeAPIError):
    """403: the caller's RBAC lacks a permission; ``permission`` says which."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(status, reason, message)
        found = _DENIED.search(message)
        self.user = found["user"] if found else ""
        self.verb = found["verb"] if found else ""
        group = found["group"] if found else ""
        resource = found["resource"] if found else ""
        self.resource = f"{resource}.{group}" if resource and group else resource
        self.namespace = (found["namespace"] or "") if found else ""

    @property
    def permission(self) -> str:
        """'list persistentvolumeclaims (all namespaces)' / 'get leases.coordination.k8s.io
        in namespace "ns"'; the server's message when it has another shape."""
        if not self.verb:
            return self.message
        where = f'in namespace "{self.namespace}"' if self.namespace else "(all namespaces)"
        return f"{self.verb} {self.resource} {where}"


class KubeUnavailable(KubeAPIError):
    """The request never got an HTTP answer; it may or may not have been applied."""


def error_from_status(status: int, body: bytes | str | None) -> KubeAPIError:
    """Build the exception for a non-2xx answer from its ``Status`` JSON body."""
    reason, message = "", ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        doc = {}
    if isinstance(doc, dict):
        reason = str(doc.get("reason") or "")
        message = str(doc.get("message") or "")
    if not message:
        message = text.strip() or "no message"
    if status == 403:
        return KubeForbidden(status, reason or "Forbidden", message)
    if status == 404:
        return KubeNotFound(status, reason or "NotFound", message)
    if status == 409:
        if reason == "AlreadyExists":
            return KubeAlreadyExists(status, reason, message)
        return KubeConflict(status, reason or "Conflict", message)
    if status == 410:
        return KubeGone(status, reason or "Expired", message)
    return KubeAPIError(status, reason or "Unknown", message)

"""Routing: a resource path to its resource, namespace, name and subresource, and an
HTTP method to the RBAC verb the authorizer and the registry work with."""

from __future__ import annotations

from dataclasses import dataclass

from .resources import ResourceType, lookup
from .status import ApiError

_NOT_ALLOWED = "the server does not allow this method on the requested resource"


@dataclass
class RequestInfo:
    group: str
    version: str
    resource: str
    namespace: str
    name: str
    subresource: str
    legacy_watch: bool


def parse_resource_path(path: str) -> RequestInfo | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    legacy_watch = bool(rest) and rest[0] == "watch"
    if legacy_watch:
        rest = rest[1:]
    namespace = ""
    if (
        len(rest) >= 3
        and rest[0] == "namespaces"
        and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
    ):
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    return RequestInfo(
        group,
        version,
        rest[0],
        namespace,
        rest[1] if len(rest) > 1 else "",
        rest[2] if len(rest) > 2 else "",
        legacy_watch,
    )


def flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("1", "true")


def resolve(method: str, info: RequestInfo, query: dict[str, str]) -> tuple[ResourceType, str]:
    """The resource and RBAC verb of a request; 404 for what is not served, 405 for a
    method the resource does not take (an access review takes only POST)."""
    rt = lookup(info.group, info.version, info.resource)
    not_found = ApiError(404, "the server could not find the requested resource")
    if rt is None or (info.namespace and not rt.namespaced):
        raise not_found
    if info.subresource and info.subresource not in rt.subresources:
        raise not_found
    verb: str | None
    if method == "GET":
        if info.legacy_watch:
            verb = "watch"  # /watch/.../{name} watches one object
        elif info.name:
            verb = "get"
        else:
            verb = "watch" if flag(query.get("watch")) else "list"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method)
        if verb == "delete" and not info.name:
            verb = "deletecollection"
    needs_name = verb in ("update", "patch", "delete")
    if (
        verb is None
        or verb not in rt.verbs
        or (needs_name and not info.name)
        or (verb == "create" and info.name)
    ):
        raise ApiError(405, _NOT_ALLOWED, details={})
    if rt.namespaced and not info.namespace and method != "GET":
        raise not_found
    return rt, verb

"""Discovery documents: what kubectl and client RESTMappers read before anything else.

Only the classic (non-aggregated) format is served. kubectl asks for aggregated
discovery through ``Accept`` and falls back when the response is plain
``application/json``; OpenAPI is absent (404), so kubectl needs ``--validate=false``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .resources import RESOURCES, ResourceType, group_versions, resources_in

Obj = dict[str, Any]


def version_info(version: str) -> Obj:
    major, minor, *_ = ([*version.split("."), "0", "0"])[:3]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{version}",
        "gitCommit": hashlib.sha1(version.encode()).hexdigest(),
        "gitTreeState": "clean",
        "buildDate": "2024-01-01T00:00:00Z",
        "goVersion": "go1.22.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def _resource_entries(rt: ResourceType) -> list[Obj]:
    main: Obj = {
        "name": rt.plural,
        "singularName": rt.singular,
        "namespaced": rt.namespaced,
        "kind": rt.kind,
        "verbs": list(rt.verbs),
    }
    if not rt.review:  # reviews are never stored
        main["storageVersionHash"] = hashlib.sha256(rt.kind.encode()).hexdigest()[:12]
    if rt.short_names:
        main["shortNames"] = list(rt.short_names)
    if rt.categories:
        main["categories"] = list(rt.categories)
    entries = [main]
    for sub in rt.subresources:
        entries.append(
            {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": rt.kind,
                "verbs": ["get", "patch", "update"],
            }
        )
    return entries


def resource_list(group: str, version: str) -> Obj | None:
    types = resources_in(group, version)
    if not types:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [e for rt in types for e in _resource_entries(rt)],
    }


def core_versions(address: str) -> Obj:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group(name: str, versions: list[str]) -> Obj:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def group_list() -> Obj:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group(g, v) for g, v in group_versions().items() if g],
    }


def group(name: str) -> Obj | None:
    versions = group_versions().get(name)
    if not name or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


__all__ = ["RESOURCES", "core_versions", "group", "group_list", "resource_list", "version_info"]

"""Server-side printing: ``meta.k8s.io/v1`` Tables, which ``kubectl get`` asks for.

kubectl renders whatever columns the server sends; without a Table it falls back to
NAME/AGE. The columns follow the real printers for the kinds a storage admin reads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .resources import ResourceType

Obj = dict[str, Any]
Column = tuple[str, str, Callable[[Obj], Any]]  # (header, type, cell)

_MODES = {
    "ReadWriteOnce": "RWO",
    "ReadOnlyMany": "ROX",
    "ReadWriteMany": "RWX",
    "ReadWriteOncePod": "RWOP",
}


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def human_age(stamp: str | None, now: datetime | None = None) -> str:
    if not stamp:
        return "<unknown>"
    try:
        then = datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return "<invalid>"
    seconds = int(((now or datetime.now(timezone.utc)) - then).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _get(obj: Obj, *path: str) -> Any:
    cur: Any = obj
    for part in path:
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def _modes(modes: list[str] | None) -> str:
    return ",".join(_MODES.get(m, m) for m in modes or [])


def _age(obj: Obj) -> str:
    return human_age(_get(obj, "metadata", "creationTimestamp"))


def _name(obj: Obj) -> str:
    return str(_get(obj, "metadata", "name") or "")


def _class_name(obj: Obj) -> str:
    annotations = _get(obj, "metadata", "annotations") or {}
    default = annotations.get("storageclass.kubernetes.io/is-default-class") == "true"
    return _name(obj) + (" (default)" if default else "")


def _claim_of(obj: Obj) -> str:
    ref = _get(obj, "spec", "claimRef")
    return f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""


_NAME: Column = ("Name", "string", _name)
_AGE: Column = ("Age", "string", _age)
_COLUMNS: dict[str, list[Column]] = {
    "persistentvolumes": [
        _NAME,
        ("Capacity", "string", lambda o: _get(o, "spec", "capacity", "storage") or ""),
        ("Access Modes", "string", lambda o: _modes(_get(o, "spec", "accessModes"))),
        ("Reclaim Policy", "string", lambda o: _get(o, "spec", "persistentVolumeReclaimPolicy")),
        ("Status", "string", lambda o: _get(o, "status", "phase") or ""),
        ("Claim", "string", _claim_of),
        ("StorageClass", "string", lambda o: _get(o, "spec", "storageClassName") or ""),
        ("Reason", "string", lambda o: _get(o, "status", "reason") or ""),
        _AGE,
    ],
    "persistentvolumeclaims": [
        _NAME,
        ("Status", "string", lambda o: "Terminating" if _get(o, "metadata", "deletionTimestamp")
         else _get(o, "status", "phase") or ""),
        ("Volume", "string", lambda o: _get(o, "spec", "volumeName") or ""),
        ("Capacity", "string", lambda o: _get(o, "status", "capacity", "storage") or ""),
        ("Access Modes", "string", lambda o: _modes(_get(o, "status", "accessModes"))),
        ("StorageClass", "string", lambda o: _get(o, "spec", "storageClassName") or ""),
        _AGE,
    ],
    "storageclasses": [
        ("Name", "string", _class_name),
        ("Provisioner", "string", lambda o: o.get("provisioner", "")),
        ("ReclaimPolicy", "string", lambda o: o.get("reclaimPolicy", "")),
        ("VolumeBindingMode", "string", lambda o: o.get("volumeBindingMode", "")),
        ("AllowVolumeExpansion", "boolean", lambda o: bool(o.get("allowVolumeExpansion"))),
        _AGE,
    ],
    "events": [
        ("Last Seen", "string", lambda o: human_age(o.get("lastTimestamp") or o.get("eventTime"))),
        ("Type", "string", lambda o: o.get("type", "")),
        ("Reason", "string", lambda o: o.get("reason", "")),
        ("Object", "string", lambda o: f"{str(_get(o, 'involvedObject', 'kind') or '').lower()}/"
         f"{_get(o, 'involvedObject', 'name') or ''}"),
        ("Message", "string", lambda o: o.get("message", "")),
    ],
    "namespaces": [_NAME, ("Status", "string", lambda o: _get(o, "status", "phase") or ""), _AGE],
    "secrets": [
        _NAME,
        ("Type", "string", lambda o: o.get("type", "")),
        ("Data", "integer", lambda o: len(o.get("data") or {})),
        _AGE,
    ],
    "configmaps": [
        _NAME,
        ("Data", "integer", lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        _AGE,
    ],
}  # fmt: skip


def table(rt: ResourceType, objs: list[Obj], resource_version: str, include: str) -> Obj:
    """A Table of ``objs`` (already in the requested group's shape)."""
    columns = _COLUMNS.get(rt.plural if rt.group != "events.k8s.io" else "", [_NAME, _AGE])
    rows = []
    for obj in objs:
        row: Obj = {"cells": [cell(obj) for _, _, cell in columns]}
        if include == "Object":
            row["object"] = obj
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj.get("metadata", {}),
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {"name": header, "type": kind, "format": "name" if header == "Name" else "",
             "description": header, "priority": 0}
            for header, kind, _ in columns
        ],
        "rows": rows,
    }  # fmt: skip

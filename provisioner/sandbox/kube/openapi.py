"""OpenAPI v3 documents: what kubectl reads before ``apply`` and before it sends
``fieldValidation``.

kubectl 1.27+ fetches ``/openapi/v3`` (an index of group-versions), then the document
of the object's group-version. From it, it learns (a) whether the server takes the
``fieldValidation`` query parameter (a PATCH operation carrying the kind's
``x-kubernetes-group-version-kind`` lists it) and (b) the strategic-merge metadata
(``x-kubernetes-patch-strategy`` / ``-merge-key``) of every field it diffs on re-apply.
Without the document kubectl refuses ``apply`` ("failed to download openapi").

The component schemas are the real kube-apiserver's, cut down to the kinds served here,
in ``openapi_schemas.json.gz`` (made by ``tools/gen-openapi-schemas``; its header says
which server). The paths are written from the resource table, so they list exactly
what the sandbox serves. ``/openapi/v2`` is not served: kubectl only falls back to it
when v3 is missing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from functools import cache
from importlib import resources as package_files
from typing import Any

from .resources import RESOURCES, ResourceType, group_versions

Obj = dict[str, Any]
SCHEMA_FILE = "openapi_schemas.json.gz"
REF = "#/components/schemas/"
# apply-patch+yaml (server-side apply) is refused by the sandbox, so it is not offered.
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")


@cache
def schema_data() -> Obj:
    """{"source", "kinds": {"group/version/Kind": schema name}, "schemas": {...}}."""
    raw = package_files.files(__package__).joinpath(SCHEMA_FILE).read_bytes()
    data: Obj = json.loads(gzip.decompress(raw))
    return data


def kind_schema(rt: ResourceType) -> str | None:
    """The component schema name of a served kind (None if the file lacks it)."""
    name: str | None = schema_data()["kinds"].get(f"{rt.group}/{rt.version}/{rt.kind}")
    return name


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _query(names: tuple[str, ...]) -> list[Obj]:
    return [{"name": n, "in": "query", "schema": {"type": "string"}} for n in names]


def _op(rt: ResourceType, action: str, op_id: str, schema: str | None, **extra: Any) -> Obj:
    ref = {"$ref": REF + schema} if schema else {"type": "object"}
    return {
        "operationId": f"{op_id}{rt.kind}",
        "responses": {"200": {"content": {"application/json": {"schema": ref}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": rt.group,
            "version": rt.version,
            "kind": rt.kind,
        },
        **extra,
    }


def _paths(rt: ResourceType) -> dict[str, Obj]:
    schema = kind_schema(rt)
    ref = {"$ref": REF + schema} if schema else {"type": "object"}
    prefix = "/" + _gv_path(rt.group, rt.version)
    if rt.namespaced:
        prefix += "/namespaces/{namespace}"
    collection = f"{prefix}/{rt.plural}"
    body = {"content": {"application/json": {"schema": ref}}, "required": True}
    patch_body = {
        "content": {t: {"schema": {"type": "object"}} for t in PATCH_TYPES},
        "required": True,
    }
    params = _query(_WRITE_PARAMS)
    item_ops = {
        "get": _op(rt, "get", "read", schema),
        "put": _op(rt, "put", "replace", schema, parameters=params, requestBody=body),
        "patch": _op(rt, "patch", "patch", schema, parameters=params, requestBody=patch_body),
        "delete": _op(rt, "delete", "delete", schema),
    }
    paths = {
        collection: {
            "get": _op(rt, "list", "list", None),
            "post": _op(rt, "post", "create", schema, parameters=params, requestBody=body),
        },
        f"{collection}/{{name}}": item_ops,
    }
    for sub in rt.subresources:
        paths[f"{collection}/{{name}}/{sub}"] = {k: item_ops[k] for k in ("get", "put", "patch")}
    return paths


@cache
def group_version_document(group: str, version: str, server_version: str) -> bytes | None:
    served = [rt for rt in RESOURCES if rt.group == group and rt.version == version]
    if not served:
        return None
    major_minor = ".".join(server_version.split(".")[:2])
    paths: dict[str, Obj] = {}
    for rt in served:
        paths.update(_paths(rt))
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": major_minor},
        "paths": paths,
        "components": {"schemas": schema_data()["schemas"]},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


@cache
def index(server_version: str) -> bytes:
    """``/openapi/v3``: each group-version with a content-addressed URL, as kubectl
    caches documents by that hash."""
    paths: Obj = {}
    for group, versions in group_versions().items():
        for version in versions:
            doc = group_version_document(group, version, server_version)
            assert doc is not None
            digest = hashlib.sha512(doc).hexdigest().upper()
            gv = _gv_path(group, version)
            paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
    return json.dumps({"paths": paths}, separators=(",", ":")).encode()


def document(path: str, server_version: str) -> bytes | None:
    """The body for an ``/openapi/v3...`` path, or None (404)."""
    rest = path[len("/openapi/v3") :].strip("/")
    if not rest:
        return index(server_version)
    parts = rest.split("/")
    if len(parts) == 2 and parts[0] == "api":
        return group_version_document("", parts[1], server_version)
    if len(parts) == 3 and parts[0] == "apis":
        return group_version_document(parts[1], parts[2], server_version)
    return None

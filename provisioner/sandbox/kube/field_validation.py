"""Server-side field validation: unknown and duplicate fields in request bodies.

The ``fieldValidation`` query parameter (``Strict`` / ``Warn`` / ``Ignore``; absent
means ``Warn`` since 1.27) decides what happens to a field the kind's schema does not
have, or a JSON key given twice: Strict refuses the request, Warn answers with one
``Warning: 299 - "..."`` entry per field and drops it, Ignore drops it silently. The
wording and the order (as the decoder meets the fields) are the real server's, checked
by tests/real/test_differential_kube.py.

Where it is checked: create/update bodies as sent (400), merge and JSON patches on the
patched object and strategic-merge patches on the patch itself (422 naming ``patch``).
Dropping the unknown fields matters: nothing stores what the schema does not know.
"""

from __future__ import annotations

import json
from typing import Any

from . import openapi
from .resources import ResourceType
from .status import ApiError, bad_request

Obj = dict[str, Any]
MODES = ("", "Ignore", "Strict", "Warn")
_OPTIONS = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}


class _Pairs(dict[str, Any]):
    """A JSON object that remembers the keys it was given more than once."""

    duplicates: list[str]


def _pairs(items: list[tuple[str, Any]]) -> _Pairs:
    out = _Pairs()
    out.duplicates = []
    for key, value in items:
        if key in out and key not in out.duplicates:
            out.duplicates.append(key)
        out[key] = value  # the last one wins, as in Go's decoder
    return out


def parse(raw: bytes) -> Any:
    """JSON with duplicate keys remembered (for ``problems``); raises ValueError."""
    return json.loads(raw, object_pairs_hook=_pairs)


def mode(query: dict[str, str], verb: str) -> str:
    value = query.get("fieldValidation", "")
    if value not in MODES:
        options = _OPTIONS.get(verb, "CreateOptions")
        supported = ", ".join(f'"{m}"' for m in MODES)
        message = f'Unsupported value: "{value}": supported values: {supported}'
        raise ApiError(
            422,
            f'{options}.meta.k8s.io "" is invalid: fieldValidation: {message}',
            reason="Invalid",
            details={
                "group": "meta.k8s.io",
                "kind": options,
                "causes": [
                    {
                        "reason": "FieldValueNotSupported",
                        "message": message,
                        "field": "fieldValidation",
                    }
                ],
            },
        )
    return value or "Warn"


def _resolve(schema: Obj | None, schemas: Obj) -> Obj | None:
    while schema is not None:
        if schema.get("allOf"):
            schema = schema["allOf"][0]
            continue
        ref = schema.get("$ref")
        if not isinstance(ref, str):
            return schema
        schema = schemas.get(ref[len(openapi.REF) :])
    return None


class _Walk:
    def __init__(self, schemas: Obj, *, sort_keys: bool, directives: bool) -> None:
        self.schemas = schemas
        self.sort_keys = sort_keys  # the body was re-encoded from a Go map: sorted keys
        self.directives = directives  # strategic-merge "$patch", "$setElementOrder/x", ...
        self.found: list[str] = []

    def walk(self, value: Any, schema: Obj | None, path: str) -> None:
        schema = _resolve(schema, self.schemas)
        if schema is None or schema.get("x-kubernetes-preserve-unknown-fields"):
            return
        if isinstance(value, dict):
            for key in getattr(value, "duplicates", []):
                self.found.append(f'duplicate field "{path}{key}"')
            properties = schema.get("properties")
            extra = schema.get("additionalProperties")
            for key in sorted(value) if self.sort_keys else list(value):
                item = value[key]
                if self.directives and (key.startswith("$") or item is None):
                    continue  # a directive, or a deletion: nothing of it is stored
                if properties is not None and key in properties:
                    self.walk(item, properties[key], f"{path}{key}.")
                elif isinstance(extra, dict):
                    self.walk(item, extra, f"{path}{key}.")
                elif properties is not None:
                    self.found.append(f'unknown field "{path}{key}"')
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            base = path[:-1]
            for i, item in enumerate(value):
                self.walk(item, schema["items"], f"{base}[{i}].")


def problems(
    rt: ResourceType, body: Any, *, sort_keys: bool = False, directives: bool = False
) -> list[str]:
    """Unknown and duplicate fields of ``body`` for the kind, in the decoder's order."""
    name = openapi.kind_schema(rt)
    if name is None:
        return []
    schemas = openapi.schema_data()["schemas"]
    walk = _Walk(schemas, sort_keys=sort_keys, directives=directives)
    walk.walk(body, schemas.get(name), "")
    return walk.found


def drop_unknown(rt: ResourceType, body: Any) -> Any:
    """``body`` without the fields the schema does not have (what gets stored)."""
    name = openapi.kind_schema(rt)
    if name is None:
        return body
    schemas = openapi.schema_data()["schemas"]
    return _prune(body, schemas.get(name), schemas)


def _prune(value: Any, schema: Obj | None, schemas: Obj) -> Any:
    schema = _resolve(schema, schemas)
    if schema is None or schema.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        out = {}
        for key, item in value.items():
            if properties is not None and key in properties:
                out[key] = _prune(item, properties[key], schemas)
            elif isinstance(extra, dict):
                out[key] = _prune(item, extra, schemas)
            elif properties is None:
                out[key] = item
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_prune(v, schema["items"], schemas) for v in value]
    return value


def warning_header(found: list[str]) -> dict[str, str]:
    """One ``299`` warning per problem, in one header (a list header in HTTP)."""
    if not found:
        return {}
    quoted = (p.replace('"', '\\"') for p in found)
    return {"Warning": ", ".join(f'299 - "{q}"' for q in quoted)}


def body_error(rt: ResourceType, found: list[str]) -> ApiError:
    """The Strict refusal of a create/update body."""
    return bad_request(
        f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
        f"strict decoding error: {', '.join(found)}"
    )


def go_format(value: Any) -> str:
    """A decoded JSON value as Go's ``%v`` prints it (the server quotes a strategic
    merge patch that way)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_format(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def patch_error(quoted: str, found: list[str]) -> ApiError:
    """The Strict refusal of a patch: 422 on the field ``patch``; ``quoted`` is the
    patched object (merge, JSON patch) or the patch (strategic merge)."""
    message = f"Invalid value: {json.dumps(quoted)}: strict decoding error: {', '.join(found)}"
    return ApiError(
        422,
        f' "" is invalid: patch: {message}',
        reason="Invalid",
        details={"causes": [{"reason": "FieldValueInvalid", "message": message, "field": "patch"}]},
    )

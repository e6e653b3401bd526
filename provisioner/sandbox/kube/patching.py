"""The three patch types the API accepts for built-in kinds.

Strategic merge patch follows the kind's OpenAPI schema (``openapi.py``; the real
server's): lists whose field says ``x-kubernetes-patch-strategy: merge`` are merged
by their ``x-kubernetes-patch-merge-key`` (``$patch: delete`` items removed), merged
lists of primitives (finalizers) are unions, other lists are replaced; the
``$setElementOrder``, ``$deleteFromPrimitiveList`` and ``$retainKeys`` directives that
kubectl apply sends are honoured. Not emulated: ``$patch: merge`` on lists and
``retainKeys`` strategies that clear sibling fields of a union.
"""

from __future__ import annotations

import copy
from typing import Any

from .status import ApiError, bad_request

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (MERGE, STRATEGIC, JSON_PATCH)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


Schema = dict[str, Any]


class _Meta:
    """Patch metadata from the kind's OpenAPI schema: ``x-kubernetes-patch-strategy``
    and ``x-kubernetes-patch-merge-key`` of each field, as the real server reads them
    from its Go types. Without a schema every list is replaced."""

    def __init__(self, schemas: Schema) -> None:
        self.schemas = schemas

    def resolve(self, schema: Schema | None) -> Schema | None:
        while schema is not None:
            if schema.get("allOf"):
                schema = schema["allOf"][0]
            elif isinstance(schema.get("$ref"), str):
                schema = self.schemas.get(schema["$ref"].rsplit("/", 1)[-1])
            else:
                return schema
        return None

    def field(self, schema: Schema | None, key: str) -> Schema | None:
        """The (unresolved) schema of ``key``: its extensions sit beside the $ref."""
        schema = self.resolve(schema)
        if schema is None:
            return None
        props = schema.get("properties")
        if isinstance(props, dict) and key in props:
            found: Schema = props[key]
            return found
        extra = schema.get("additionalProperties")
        return extra if isinstance(extra, dict) else None


def strategic_merge_patch(
    target: Any, patch: Any, schema: Schema | None = None, schemas: Schema | None = None
) -> Any:
    """Strategic merge of ``patch`` into ``target``; ``schema`` is the kind's OpenAPI
    schema (with ``schemas`` to resolve references)."""
    return _smp(target, patch, schema, _Meta(schemas or {}))


def _smp(target: Any, patch: Any, schema: Schema | None, meta: _Meta) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value if isinstance(value, list) else []
            continue
        if key in ("$retainKeys", "$patch"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            drop = value if isinstance(value, list) else []
            kept = [v for v in result.get(field) or [] if v not in drop]
            if kept:
                result[field] = kept
            else:
                result.pop(field, None)  # an empty list is not stored (omitempty)
            continue
        if value is None:
            result.pop(key, None)
            continue
        sub = meta.field(schema, key)
        if isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, sub, meta)
            continue
        merged = _smp(result.get(key), value, sub, meta)
        if merged is None:
            result.pop(key, None)
        else:
            result[key] = merged
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _reorder(result[field], order, _merge_key(meta.field(schema, field)))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain or k in patch}
    return result


def _merge_key(schema: Schema | None) -> str | None:
    if schema is None or "merge" not in str(schema.get("x-kubernetes-patch-strategy", "")):
        return None
    key = schema.get("x-kubernetes-patch-merge-key")
    return str(key) if key else ""  # "" : a merged list of primitives


def _merge_list(current: Any, patch: list[Any], schema: Schema | None, meta: _Meta) -> Any:
    key = _merge_key(schema)
    if key is None or not isinstance(current, list):
        return [copy.deepcopy(v) for v in patch if not (isinstance(v, dict) and "$patch" in v)]
    if key == "":
        # the patch's elements first, then the server's others (as the real merge does
        # without a $setElementOrder)
        return [copy.deepcopy(v) for v in patch] + [v for v in current if v not in patch]
    items_schema = (meta.resolve(schema) or {}).get("items")
    result = [copy.deepcopy(v) for v in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            continue
        same = [i for i, v in enumerate(result) if isinstance(v, dict) and v.get(key) == item[key]]
        index = same[0] if same else None
        if item.get("$patch") == "delete":
            if index is not None:
                result.pop(index)
        elif index is None:
            result.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            result[index] = _smp(result[index], item, items_schema, meta)
    return result


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    """``$setElementOrder``: the listed elements first, in the patch's order; the
    server's other elements after them, in their own order."""

    def ident(v: Any) -> Any:
        return v.get(key) if key and isinstance(v, dict) else v

    wanted = [ident(o) for o in order]
    listed = sorted((v for v in items if ident(v) in wanted), key=lambda v: wanted.index(ident(v)))
    return listed + [v for v in items if ident(v) not in wanted]


def _rejected() -> ApiError:
    """A JSON patch that cannot apply (missing path, failed test, bad index): the real
    server says no more than this."""
    return ApiError(
        422, "the server rejected our request due to an error in our request", details={}
    )


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for part in parts:
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise _rejected()
    return cur


def _set(parent: Any, key: str, value: Any, *, insert: bool, path: str) -> None:
    if isinstance(parent, dict):
        parent[key] = value
        return
    if isinstance(parent, list):
        if key == "-":
            parent.append(value)
            return
        if not key.isdigit() or int(key) > len(parent) or (not insert and int(key) >= len(parent)):
            raise _rejected()
        if insert:
            parent.insert(int(key), value)
        else:
            parent[int(key)] = value
        return
    raise _rejected()


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 over a private copy; a failed ``test`` or a missing path is a 422."""
    if not isinstance(ops, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid json patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        parts = _pointer(path)
        if kind == "test":
            if _walk(doc, parts, path) != op.get("value"):
                raise _rejected()
            continue
        if kind in ("add", "replace", "copy", "move"):
            if kind in ("copy", "move"):
                src = _pointer(op.get("from", ""))
                value = copy.deepcopy(_walk(doc, src, op.get("from", "")))
                if kind == "move":
                    src_parent = _walk(doc, src[:-1], op["from"])
                    if isinstance(src_parent, list):
                        src_parent.pop(int(src[-1]))
                    else:
                        src_parent.pop(src[-1])
            else:
                value = copy.deepcopy(op.get("value"))
            if not parts:
                doc = value
                continue
            parent = _walk(doc, parts[:-1], path)
            if kind == "replace":
                _walk(doc, parts, path)  # must exist
            _set(parent, parts[-1], value, insert=kind != "replace", path=path)
        elif kind == "remove":
            parent = _walk(doc, parts[:-1], path)
            _walk(doc, parts, path)
            if isinstance(parent, list):
                parent.pop(int(parts[-1]))
            else:
                parent.pop(parts[-1])
        else:
            raise bad_request(f"unknown json patch operation {kind!r}")
    return doc


def apply_patch(
    content_type: str,
    target: dict[str, Any],
    patch: Any,
    schema: Schema | None = None,
    schemas: Schema | None = None,
) -> dict[str, Any]:
    kind = content_type.split(";")[0].strip().lower()
    if kind == MERGE:
        result = merge_patch(target, patch)
    elif kind == STRATEGIC:
        result = strategic_merge_patch(target, patch, schema, schemas)
    elif kind == JSON_PATCH:
        result = json_patch(target, patch)
    elif kind == APPLY:
        raise ApiError(
            415,
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(PATCH_TYPES)}",
        )
    else:
        raise ApiError(415, "415: Unsupported Media Type", details={})
    if not isinstance(result, dict):
        raise bad_request("patch did not produce an object")
    return result

"""The three patch types the API accepts for built-in kinds.

Strategic merge patch is emulated as a JSON merge patch plus the ``$patch`` and
``$retainKeys``-free subset clients send for the fields this project uses: lists
(finalizers, containers, accessModes, subsets...) are replaced wholesale, which is what
the real server does for lists without a merge key and is harmless for the rest.
``$deleteFromPrimitiveList/finalizers`` is honoured because kubectl and controllers
emit it when removing a finalizer.
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


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key == "$retainKeys":
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            drop = set(value or [])
            result[field] = [v for v in result.get(field) or [] if v not in drop]
            continue
        if value is None:
            result.pop(key, None)
        else:
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


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
            raise ApiError(
                422,
                f"the server rejected our request due to an error in our request: "
                f'doc is missing path: "{path}"',
            )
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
            raise ApiError(422, f'unable to apply JSON patch: index out of range at "{path}"')
        if insert:
            parent.insert(int(key), value)
        else:
            parent[int(key)] = value
        return
    raise ApiError(422, f'doc is missing path: "{path}"')


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
                raise ApiError(422, f"testing value {path} failed: test failed")
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


def apply_patch(content_type: str, target: dict[str, Any], patch: Any) -> dict[str, Any]:
    kind = content_type.split(";")[0].strip().lower()
    if kind == MERGE:
        result = merge_patch(target, patch)
    elif kind == STRATEGIC:
        result = strategic_merge_patch(target, patch)
    elif kind == JSON_PATCH:
        result = json_patch(target, patch)
    else:
        raise ApiError(
            415,
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(PATCH_TYPES)}",
        )
    if not isinstance(result, dict):
        raise bad_request("patch did not produce an object")
    return result

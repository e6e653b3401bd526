"""Request bodies in: which media type, decoded how, and what field validation says.

Create and update bodies come as JSON or (from kubectl's typed commands) protobuf;
``fieldValidation`` decides what unknown or duplicate fields do. Patches are checked on
the patched object (merge, JSON patch) or on the patch itself (strategic merge), as the
real server does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from . import field_validation, protobuf
from .resources import ResourceType
from .transport import read_json

Obj = dict[str, Any]


def object_body(
    rt: ResourceType, body: tuple[bytes, str], query: dict[str, str], verb: str
) -> tuple[Any, dict[str, str]]:
    """A create/update body as JSON, whichever media type it came in, with unknown
    fields handled as ``fieldValidation`` says; (object, response headers)."""
    media = body[1].split(";")[0].strip().lower()
    check = field_validation.mode(query, verb)
    if media == protobuf.MEDIA_TYPE:
        # a protobuf body has no unknown fields: the decoder only knows the schema's
        return protobuf.decode(body[0], api_version=rt.api_version, kind=rt.kind), {}
    if media not in ("", "application/json", "*/*"):
        raise protobuf.unsupported(protobuf=protobuf.accepts_protobuf(rt.api_version, rt.kind))
    obj = read_json(body, parse=field_validation.parse)
    found = field_validation.problems(rt, obj)
    if not found:
        return obj, {}
    if check == "Strict":
        raise field_validation.body_error(rt, found)
    headers = field_validation.warning_header(found) if check == "Warn" else {}
    return field_validation.drop_unknown(rt, obj), headers


def patch_check(
    rt: ResourceType, content_type: str, patch: Any, check: str, headers: dict[str, str]
) -> Callable[[Obj], Obj]:
    """Field validation of a patch, run on the patched object (``Registry.patch``)."""
    strategic = content_type == "application/strategic-merge-patch+json"

    def run(patched: Obj) -> Obj:
        if strategic:
            found = field_validation.problems(rt, patch, sort_keys=True, directives=True)
            quoted = field_validation.go_format(patch)
        else:
            merge = content_type == "application/merge-patch+json"
            found = field_validation.problems(rt, patched, sort_keys=merge)
            quoted = json.dumps(patched, separators=(",", ":"), sort_keys=merge)
        if not found:
            return patched
        if check == "Strict":
            raise field_validation.patch_error(quoted, found)
        if check == "Warn":
            headers.update(field_validation.warning_header(found))
        pruned: Obj = field_validation.drop_unknown(rt, patched)
        return pruned

    return run

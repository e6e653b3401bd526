"""Request options: ``DeleteOptions`` (a DELETE's body or its query) and ``dryRun``.

Clients send DeleteOptions in the encoding of their client: Helm's resource deletes
as JSON, its release Secret's delete (a typed client) as protobuf; kubectl puts
``propagationPolicy`` and ``dryRun`` in a JSON body. With no body the query carries
them. A body is decoded as kube-apiserver decodes it, and refused as it refuses it:
an undecodable body is a 500 with Go's parser message, an unknown media type a 415,
a bad value a 422 naming the field.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from . import gojson, protobuf
from .status import ApiError, bad_request

Obj = dict[str, Any]
Query = dict[str, list[str]]
POLICIES = ("Foreground", "Background", "Orphan")
_BOOLS = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
_MEDIA = ("application/json", "application/yaml", protobuf.MEDIA_TYPE)
_VERSION_KIND = (
    'struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
    'Kind string "json:\\"kind,omitempty\\"" }'
)
# DeleteOptions fields: JSON name → (Go type for messages, Python check)
_FIELDS: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "gracePeriodSeconds": ("int64", int),
    "orphanDependents": ("bool", bool),
    "propagationPolicy": ("v1.DeletionPropagation", str),
    "dryRun": ("[]string", list),
    "preconditions": ("v1.Preconditions", dict),
}


Release = tuple[int, int]
# A DeleteOptions body that does not decode is a 400 from 1.35 on (kubernetes#133358);
# before, the error went out unwrapped: a 500 with no reason.
BAD_REQUEST_SINCE = (1, 35)
# Field errors print a list value as JSON (["x"]) in 1.37, as Go syntax in 1.25.
JSON_VALUES_SINCE = (1, 33)


def undecodable(message: str, release: Release) -> ApiError:
    if release >= BAD_REQUEST_SINCE:
        return bad_request(message)
    return ApiError(500, message, reason="")


def _type_error(name: str, value: Any, go_type: str) -> str:
    kind = gojson.type_name(value)
    if go_type != "int64" or isinstance(value, bool) or not isinstance(value, float):
        kind = kind.split(" ")[0]
    where = f"Go struct field DeleteOptions.{name} of type {go_type}"
    return f"json: cannot unmarshal {kind} into {where}"


class _Refused(ValueError):
    """A body the decoder refuses (message in Go's words)."""


def _checked(obj: Obj) -> Obj:
    """Known fields of the right JSON type (unknown ones are ignored, as Go does)."""
    out: Obj = {}
    for name, (go_type, typ) in _FIELDS.items():
        value = obj.get(name)
        if value is None:
            continue
        wrong = not isinstance(value, typ) or (typ is int and isinstance(value, bool))
        if wrong:
            raise _Refused(_type_error(name, value, go_type))
        if name == "dryRun":
            for item in value:
                if not isinstance(item, str):
                    raise _Refused(_type_error(name, item, "string"))
        if name == "preconditions":
            for key in ("uid", "resourceVersion"):
                if value.get(key) is not None and not isinstance(value[key], str):
                    raise _Refused(_type_error(f"preconditions.{key}", value[key], "string"))
        out[name] = value
    return out


def _from_json(raw: bytes) -> Obj:
    problem = gojson.syntax_error(raw)
    if problem is not None:
        raise _Refused(f"couldn't get version/kind; json parse error: {problem}")
    obj = json.loads(raw)
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        kind = gojson.type_name(obj).split(" ")[0]
        raise _Refused(
            "couldn't get version/kind; json parse error: json: cannot unmarshal "
            f"{kind} into Go value of type {_VERSION_KIND}"
        )
    return obj


def _typed(obj: Obj, release: Release) -> Obj:
    """Refuse a body naming another kind, as the scheme does (Status is registered
    beside DeleteOptions, with no conversion between them)."""
    kind, version = obj.get("kind") or "", obj.get("apiVersion") or ""
    if kind == "Status" and version == "v1":
        raise _Refused("converting (v1.Status) to (v1.DeleteOptions): unknown conversion")
    if kind not in ("", "DeleteOptions"):
        line = 111 if release >= BAD_REQUEST_SINCE else 100  # where Go's scheme.go says it
        raise _Refused(
            f'no kind "{kind}" is registered for version "{version}" in scheme '
            f'"pkg/runtime/scheme.go:{line}"'
        )
    return obj


def _from_query(query: Query) -> Obj:
    """The query form (no body): scalars from their first value, as the parameter
    codec converts them."""
    out: Obj = {}
    grace = query.get("gracePeriodSeconds")
    if grace:
        try:
            out["gracePeriodSeconds"] = int(grace[0], 10)
        except ValueError:
            raise bad_request(f'strconv.ParseInt: parsing "{grace[0]}": invalid syntax') from None
    orphan = query.get("orphanDependents")
    if orphan:
        if orphan[0] not in _BOOLS:
            raise bad_request(f'strconv.ParseBool: parsing "{orphan[0]}": invalid syntax')
        out["orphanDependents"] = _BOOLS[orphan[0]]
    if query.get("propagationPolicy"):
        out["propagationPolicy"] = query["propagationPolicy"][0]
    if query.get("dryRun"):
        out["dryRun"] = list(query["dryRun"])
    return out


def _invalid(kind: str, causes: list[tuple[str, str, str]]) -> ApiError:
    text = ", ".join(f"{f}: {m}" for f, _, m in causes)
    return ApiError(
        422,
        f'{kind}.meta.k8s.io "" is invalid: ' + (text if len(causes) == 1 else f"[{text}]"),
        details={
            "group": "meta.k8s.io",
            "kind": kind,
            "causes": [{"reason": r, "message": m, "field": f} for f, r, m in causes],
        },
    )


def _dry_run_causes(values: list[str], release: Release) -> list[tuple[str, str, str]]:
    if all(v == "All" for v in values):
        return []
    quoted = ", ".join(json.dumps(v) for v in values)
    if release >= JSON_VALUES_SINCE:
        shown = "[" + quoted.replace(", ", ",") + "]"
    else:
        shown = "[]string{" + quoted + "}"
    message = f'Unsupported value: {shown}: supported values: "All"'
    return [("dryRun", "FieldValueNotSupported", message)]


def _decoded(raw: bytes, content_type: str, release: Release) -> Obj:
    media = content_type.split(";")[0].strip().lower() or "application/json"
    if media not in _MEDIA:
        raise ApiError(
            415,
            "the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(_MEDIA)}",
        )
    try:
        if media == protobuf.MEDIA_TYPE:
            return _checked(_typed(protobuf.decode_options(raw), release))
        if media == "application/yaml":
            try:
                loaded = yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise _Refused(f"error converting YAML to JSON: {exc}") from None
            raw = json.dumps(loaded).encode()
        return _checked(_typed(_from_json(raw), release))
    except (_Refused, protobuf.Undecodable) as exc:
        raise undecodable(str(exc), release) from None


def delete_options(body: tuple[bytes, str], query: Query, release: Release) -> Obj:
    """The DeleteOptions of a DELETE or delete-collection, validated."""
    options = _decoded(*body, release) if body[0] else _from_query(query)
    causes: list[tuple[str, str, str]] = []
    policy = options.get("propagationPolicy")
    if policy is not None and options.get("orphanDependents") is not None:
        causes.append(
            (
                "propagationPolicy",
                "FieldValueInvalid",
                f"Invalid value: {json.dumps(policy)}: orphanDependents and "
                "deletionPropagation cannot be both set",
            )
        )
    if policy is not None and policy not in POLICIES:
        supported = ", ".join(json.dumps(p) for p in (*POLICIES, "nil"))
        causes.append(
            (
                "propagationPolicy",
                "FieldValueNotSupported",
                f"Unsupported value: {json.dumps(policy)}: supported values: {supported}",
            )
        )
    causes += _dry_run_causes(options.get("dryRun") or [], release)
    if causes:
        raise _invalid("DeleteOptions", causes)
    return options


def dry_run(query: Query, kind: str, release: Release) -> bool:
    """Whether a create/update/patch (``kind``: CreateOptions, UpdateOptions,
    PatchOptions) is a dry run; an unsupported value is a 422 as on a real server."""
    values = query.get("dryRun") or []
    causes = _dry_run_causes(values, release)
    if causes:
        raise _invalid(kind, causes)
    return bool(values)


# Watch lists (``sendInitialEvents``): known from 1.27; the WatchList gate is on by
# default in 1.32 and from 1.34 (off in 1.33). kubectl 1.37 asks for one first and
# falls back to list-then-watch when the server refuses it.
SEND_INITIAL_EVENTS_SINCE = (1, 27)


def watch_list_enabled(release: Release) -> bool:
    return release >= (1, 34) or release == (1, 32)


def list_options(query: dict[str, str], *, watch: bool, release: Release) -> bool:
    """Check a list's or watch's resourceVersionMatch and sendInitialEvents as the
    release does (422 ListOptions); True when the watch sends its initial events."""
    match = query.get("resourceVersionMatch", "")
    rv = query.get("resourceVersion", "")
    known = release >= SEND_INITIAL_EVENTS_SINCE
    send = query.get("sendInitialEvents") if known else None
    forbid = "FieldValueForbidden"
    causes: list[tuple[str, str, str]] = []
    if watch and known:
        if send is not None:
            if match != "NotOlderThan":
                why = "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
                causes.append(("resourceVersionMatch", forbid, f"Forbidden: {why}"))
            if not watch_list_enabled(release):
                why = (
                    "sendInitialEvents is forbidden for watch unless the WatchList feature "
                    "gate is enabled"
                )
                causes.append(("sendInitialEvents", forbid, f"Forbidden: {why}"))
        if match:
            if send is None:
                why = (
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is "
                    "provided"
                )
                causes.append(("resourceVersionMatch", forbid, f"Forbidden: {why}"))
            if match != "NotOlderThan":
                message = f'Unsupported value: "{match}": supported values: "NotOlderThan"'
                causes.append(("resourceVersionMatch", "FieldValueNotSupported", message))
    else:
        if match:
            if watch:
                why = "resourceVersionMatch is forbidden for watch"
                causes.append(("resourceVersionMatch", forbid, f"Forbidden: {why}"))
            if not rv:
                why = "resourceVersionMatch is forbidden unless resourceVersion is provided"
                causes.append(("resourceVersionMatch", forbid, f"Forbidden: {why}"))
            if match not in ("Exact", "NotOlderThan"):
                supported = '"Exact", "NotOlderThan", ""'
                message = f'Unsupported value: "{match}": supported values: {supported}'
                causes.append(("resourceVersionMatch", "FieldValueNotSupported", message))
        if known and send is not None:
            why = "sendInitialEvents is forbidden for list"
            causes.append(("sendInitialEvents", forbid, f"Forbidden: {why}"))
    if causes:
        raise _invalid("ListOptions", causes)
    return bool(watch and send is not None and send.lower() == "true")


# A patch that is not JSON: "invalid JSON patch" in 1.37; 1.25 gives Go's parser
# message ("error decoding patch: " before it for merge and JSON patches). Checked at
# 1.25 and 1.37 only (the release between is a guess).
PATCH_JSON_ERROR_SINCE = (1, 34)


def patch_syntax(raw: bytes, media: str, release: Release) -> None:
    """Refuse a patch body that does not parse, in the release's words (400)."""
    problem = gojson.syntax_error(raw)
    if problem is None:
        return
    if release >= PATCH_JSON_ERROR_SINCE:
        raise bad_request("invalid JSON patch")
    if media == "application/strategic-merge-patch+json":
        raise bad_request(problem)
    raise bad_request(f"error decoding patch: {problem}")

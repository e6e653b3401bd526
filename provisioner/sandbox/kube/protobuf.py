"""Protobuf request bodies (``application/vnd.kubernetes.protobuf``) decoded to JSON.

kubectl's typed commands (``create namespace``, ``create secret``, ``create configmap``,
``create serviceaccount``, ``create role``/``rolebinding``/``clusterrole``/
``clusterrolebinding``, ``auth can-i``) and Helm's release storage send protobuf by
default. The envelope is the 4-byte magic
``k8s\\x00`` followed by a ``runtime.Unknown`` message (typeMeta = 1, raw = 2,
contentEncoding = 3, contentType = 4) whose ``raw`` holds the object itself.

Only the kinds below are understood; the field numbers are those of k8s.io/api
``core/v1/generated.proto`` and apimachinery ``meta/v1/generated.proto``. Any other
kind is refused with 415, as the real server refuses a media type it cannot decode
for a resource. Responses stay JSON: kubectl's ``Accept`` always lists
``application/json`` after protobuf.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .status import ApiError, bad_request

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

Obj = dict[str, Any]


@dataclass(frozen=True)
class Scalar:
    kind: str  # "string", "string?", "bytes" (base64 in JSON), "bool", "int", "int?", "time"


@dataclass(frozen=True)
class Map:
    value: str  # "string" or "bytes"; keys are always strings in the kinds served


@dataclass(frozen=True)
class Repeated:
    item: Scalar | Message


@dataclass(frozen=True)
class Message:
    fields: dict[int, tuple[str, Scalar | Map | Repeated | Message]]


# Go's generated marshallers write every non-pointer field, zero or not; JSON omits
# them (omitempty), so "" strings, a 0 "int" and the zero Time are dropped here.
# "int?" is a pointer (*int64) field: present means set, even to 0. Every bool of the
# kinds served is a pointer too.
STRING, BYTES, BOOL, INT, OPT_INT, TIME = (
    Scalar(k) for k in ("string", "bytes", "bool", "int", "int?", "time")
)
_ZERO = object()

OWNER_REFERENCE = Message(
    {
        1: ("kind", STRING),
        3: ("name", STRING),
        4: ("uid", STRING),
        5: ("apiVersion", STRING),
        6: ("controller", BOOL),
        7: ("blockOwnerDeletion", BOOL),
    }
)
OBJECT_META = Message(
    {
        1: ("name", STRING),
        2: ("generateName", STRING),
        3: ("namespace", STRING),
        4: ("selfLink", STRING),
        5: ("uid", STRING),
        6: ("resourceVersion", STRING),
        7: ("generation", INT),
        8: ("creationTimestamp", TIME),
        9: ("deletionTimestamp", TIME),
        10: ("deletionGracePeriodSeconds", OPT_INT),
        11: ("labels", Map("string")),
        12: ("annotations", Map("string")),
        13: ("ownerReferences", Repeated(OWNER_REFERENCE)),
        14: ("finalizers", Repeated(STRING)),
        # 17 managedFields: dropped by the server on create/update anyway
    }
)
OBJECT_REFERENCE = Message(
    {
        1: ("kind", STRING),
        2: ("namespace", STRING),
        3: ("name", STRING),
        4: ("uid", STRING),
        5: ("apiVersion", STRING),
        6: ("resourceVersion", STRING),
        7: ("fieldPath", STRING),
    }
)

# (apiVersion, kind) → the object's message.
KINDS: dict[tuple[str, str], Message] = {
    ("v1", "Namespace"): Message(
        {
            1: ("metadata", OBJECT_META),
            2: ("spec", Message({1: ("finalizers", Repeated(STRING))})),
            3: ("status", Message({1: ("phase", STRING)})),
        }
    ),
    ("v1", "Secret"): Message(
        {
            1: ("metadata", OBJECT_META),
            2: ("data", Map("bytes")),
            3: ("type", STRING),
            4: ("stringData", Map("string")),
            5: ("immutable", BOOL),
        }
    ),
    ("v1", "ConfigMap"): Message(
        {
            1: ("metadata", OBJECT_META),
            2: ("data", Map("string")),
            3: ("binaryData", Map("bytes")),
            4: ("immutable", BOOL),
        }
    ),
    ("v1", "ServiceAccount"): Message(
        {
            1: ("metadata", OBJECT_META),
            2: ("secrets", Repeated(OBJECT_REFERENCE)),
            3: ("imagePullSecrets", Repeated(Message({1: ("name", STRING)}))),
            4: ("automountServiceAccountToken", BOOL),
        }
    ),
}
# rbac.authorization.k8s.io/v1 (kubectl create role/rolebinding/clusterrole/
# clusterrolebinding); a ClusterRole's aggregationRule is not decoded.
_RULE = Message(
    {
        1: ("verbs", Repeated(STRING)),
        2: ("apiGroups", Repeated(STRING)),
        3: ("resources", Repeated(STRING)),
        4: ("resourceNames", Repeated(STRING)),
        5: ("nonResourceURLs", Repeated(STRING)),
    }
)
_SUBJECT = Message(
    {1: ("kind", STRING), 2: ("apiGroup", STRING), 3: ("name", STRING), 4: ("namespace", STRING)}
)
_ROLE_REF = Message({1: ("apiGroup", STRING), 2: ("kind", STRING), 3: ("name", STRING)})
_RBAC = "rbac.authorization.k8s.io/v1"
_ROLE = Message({1: ("metadata", OBJECT_META), 2: ("rules", Repeated(_RULE))})
_BINDING = Message(
    {1: ("metadata", OBJECT_META), 2: ("subjects", Repeated(_SUBJECT)), 3: ("roleRef", _ROLE_REF)}
)
KINDS.update(
    {
        (_RBAC, "Role"): _ROLE,
        (_RBAC, "ClusterRole"): _ROLE,
        (_RBAC, "RoleBinding"): _BINDING,
        (_RBAC, "ClusterRoleBinding"): _BINDING,
    }
)

# authorization.k8s.io/v1 (kubectl auth can-i sends its reviews in protobuf).
_RESOURCE_ATTRIBUTES = Message(
    {
        1: ("namespace", STRING),
        2: ("verb", STRING),
        3: ("group", STRING),
        4: ("version", STRING),
        5: ("resource", STRING),
        6: ("subresource", STRING),
        7: ("name", STRING),
    }
)
_ACCESS_SPEC: dict[int, tuple[str, Scalar | Map | Repeated | Message]] = {
    1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
    2: ("nonResourceAttributes", Message({1: ("path", STRING), 2: ("verb", STRING)})),
}
_AUTHORIZATION = "authorization.k8s.io/v1"
KINDS.update(
    {
        (_AUTHORIZATION, "SelfSubjectAccessReview"): Message(
            {1: ("metadata", OBJECT_META), 2: ("spec", Message(_ACCESS_SPEC))}
        ),
        (_AUTHORIZATION, "SelfSubjectRulesReview"): Message(
            {1: ("metadata", OBJECT_META), 2: ("spec", Message({1: ("namespace", STRING)}))}
        ),
    }
)
# meta/v1 DeleteOptions, whatever apiVersion its envelope names (the server accepts
# them per group for old clients).
DELETE_OPTIONS = Message(
    {
        1: ("gracePeriodSeconds", OPT_INT),
        2: ("preconditions", Message({1: ("uid", STRING), 2: ("resourceVersion", STRING)})),
        3: ("orphanDependents", BOOL),
        4: ("propagationPolicy", Scalar("string?")),
        5: ("dryRun", Repeated(STRING)),
    }
)
_UNKNOWN_TYPE_META = Message({1: ("apiVersion", STRING), 2: ("kind", STRING)})
_TIME = Message({1: ("seconds", INT), 2: ("nanos", INT)})


class _Malformed(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value): varints as int, length-delimited as bytes; fixed-width
    fields are skipped (none of the kinds served has one)."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _Malformed("field number 0")
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise _Malformed("truncated field")
            out.append((number, buf[pos : pos + length]))
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > len(buf):
                raise _Malformed("truncated fixed field")
        else:
            raise _Malformed(f"unsupported wire type {wire}")
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(kind: Scalar, raw: int | bytes) -> Any:
    if kind.kind == "bool":
        return bool(_need(raw, int))
    if kind.kind in ("int", "int?"):
        number = _signed(_need(raw, int))
        return _ZERO if number == 0 and kind.kind == "int" else number
    data = _need(raw, bytes)
    if kind.kind == "bytes":
        return base64.b64encode(data).decode()
    if kind.kind == "time":
        seconds = _message(_TIME, data).get("seconds", 0)
        if not seconds:
            return _ZERO
        return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise _Malformed("string field is not UTF-8") from None
    return text if text or kind.kind == "string?" else _ZERO


def _keep(value: Any) -> Any:
    """Map values and list items keep their zero values ("" is a real value there)."""
    return "" if value is _ZERO else value


def _text(raw: int | bytes) -> str:
    return str(_keep(_scalar(STRING, raw)))


def _need(raw: int | bytes, typ: type) -> Any:
    if not isinstance(raw, typ):
        raise _Malformed("unexpected wire type")
    return raw


def _message(schema: Message, buf: bytes) -> Obj:
    out: Obj = {}
    for number, raw in _fields(buf):
        spec = schema.fields.get(number)
        if spec is None:
            continue  # unknown field: proto3 decoders skip it, as Go's does
        name, kind = spec
        if isinstance(kind, Message):
            out[name] = _message(kind, _need(raw, bytes))
        elif isinstance(kind, Map):
            entry = _fields(_need(raw, bytes))
            key = next((v for n, v in entry if n == 1), b"")
            value = next((v for n, v in entry if n == 2), b"")
            out.setdefault(name, {})[_text(key)] = _keep(_scalar(Scalar(kind.value), value))
        elif isinstance(kind, Repeated):
            item = kind.item
            element = (
                _message(item, _need(raw, bytes))
                if isinstance(item, Message)
                else _keep(_scalar(item, raw))
            )
            out.setdefault(name, []).append(element)
        else:
            value = _scalar(kind, raw)
            if value is not _ZERO:
                out[name] = value
    return out


def unsupported(*, protobuf: bool) -> ApiError:
    """415 for a body the sandbox cannot decode, in the real server's words (it lists
    the media types the resource accepts)."""
    accepted = ("application/json", MEDIA_TYPE) if protobuf else ("application/json",)
    return ApiError(
        415,
        "the body of the request was in an unknown format - accepted media types "
        f"include: {', '.join(accepted)}",
    )


def accepts_protobuf(api_version: str, kind: str) -> bool:
    return (api_version, kind) in KINDS


def decode(raw: bytes, *, api_version: str, kind: str) -> Obj:
    """The JSON form of a protobuf body sent to the resource of ``api_version``/``kind``.

    415 when that resource takes no protobuf here; 400 when the bytes are not a valid
    envelope or name a kind with no schema.
    """
    if not accepts_protobuf(api_version, kind):
        raise unsupported(protobuf=False)
    if not raw.startswith(MAGIC):
        raise bad_request("the request body is not a Kubernetes protobuf object (no k8s magic)")
    try:
        type_meta: Obj = {}
        payload = b""
        for number, value in _fields(raw[len(MAGIC) :]):
            if number == 1:
                type_meta = _message(_UNKNOWN_TYPE_META, _need(value, bytes))
            elif number == 2:
                payload = _need(value, bytes)
            elif number == 3 and _need(value, bytes):
                raise _Malformed("content encodings are not supported")
        sent = (type_meta.get("apiVersion", ""), type_meta.get("kind", ""))
        schema = KINDS.get(sent)
        if schema is None:
            raise _Malformed(f"no protobuf decoding for {sent[0]}/{sent[1]}")
        obj = _message(schema, payload)
    except _Malformed as exc:
        raise bad_request(f"the protobuf request body could not be decoded: {exc}") from None
    # a kind that differs from the resource's is refused by the registry, as for JSON
    return {"apiVersion": sent[0], "kind": sent[1], **obj}


class Undecodable(ValueError):
    """A body that is not a protobuf DeleteOptions; the message is kube-apiserver's."""


def decode_options(raw: bytes) -> Obj:
    """DeleteOptions from a protobuf body, with the envelope's apiVersion and kind."""
    if not raw.startswith(MAGIC):
        prefix = " ".join(str(b) for b in MAGIC)
        raise Undecodable(
            f"provided data does not appear to be a protobuf message, expected prefix [{prefix}]"
        )
    try:
        type_meta: Obj = {}
        payload = b""
        for number, value in _fields(raw[len(MAGIC) :]):
            if number == 1:
                type_meta = _message(_UNKNOWN_TYPE_META, _need(value, bytes))
            elif number == 2:
                payload = _need(value, bytes)
        options = _message(DELETE_OPTIONS, payload)
    except _Malformed as exc:
        raise Undecodable(f"unable to decode the protobuf body: {exc}") from None
    return {**type_meta, **options}

"""Request bodies as Heketi's Go decoder sees them, and the create-request checks.

Go's `encoding/json` decides what is a 422: a body that is not one JSON value, or a
field whose JSON type cannot go into the Go field (a float into an int, a string into
a bool…). `null` anywhere leaves the Go zero value. Unknown fields are ignored. Only
the first JSON value is read, so trailing bytes are ignored too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .state import KIB_PER_GIB

UNPARSABLE = "request unable to be parsed"
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]+$")
GID_LIMIT = 2**31 - 1
DISPERSE_COMBINATIONS = {(2, 1), (4, 2), (8, 3), (8, 4)}
MAX_SNAPSHOT_FACTOR = 100
_INT64 = range(-(2**63), 2**63)

# Go types of the fields we read; nested dicts describe nested structs.
INT, STR, BOOL, FLOAT, STR_LIST = "int", "str", "bool", "float", "str_list"
CREATE_SCHEMA: dict[str, Any] = {
    "size": INT,
    "name": STR,
    "clusters": STR_LIST,
    "durability": {
        "type": STR,
        "replicate": {"replica": INT},
        "disperse": {"data": INT, "redundancy": INT},
    },
    "gid": INT,
    "glustervolumeoptions": STR_LIST,
    "block": BOOL,
    "snapshot": {"enable": BOOL, "factor": FLOAT},
}
EXPAND_SCHEMA: dict[str, Any] = {"expand_size": INT}
CLONE_SCHEMA: dict[str, Any] = {"name": STR}
_ZERO = {INT: 0, STR: "", BOOL: False, FLOAT: 0.0, STR_LIST: []}


class Unparsable(Exception):
    """The body would make Go's decoder fail: answer 422."""


class Invalid(Exception):
    """A 400 with this exact text."""


def _fits(kind: str, value: Any) -> bool:
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool) and value in _INT64
    if kind == FLOAT:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == STR:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    return isinstance(value, list) and all(isinstance(v, str) or v is None for v in value)


def _decode(schema: dict[str, Any], obj: Any) -> dict[str, Any]:
    if obj is None:
        obj = {}
    if not isinstance(obj, dict):
        raise Unparsable
    out: dict[str, Any] = {}
    for key, kind in schema.items():
        value = obj.get(key)
        if isinstance(kind, dict):
            out[key] = _decode(kind, value)
        elif value is None:
            zero = _ZERO[kind]
            out[key] = list(zero) if isinstance(zero, list) else zero
        elif not _fits(kind, value):
            raise Unparsable
        elif kind == STR_LIST:
            out[key] = ["" if v is None else v for v in value]
        else:
            out[key] = value
    return out


def decode_body(body: bytes, schema: dict[str, Any]) -> dict[str, Any]:
    """The Go struct the handler would see, with zero values filled in."""
    try:
        text = body.decode("utf-8").lstrip()
        value, _ = json.JSONDecoder().raw_decode(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Unparsable from exc
    return _decode(schema, value)


def _validation_text(errors: dict[str, str]) -> str:
    """ozzo-validation's format: fields sorted, `a: x; b: y.`"""
    joined = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
    return f"validation failed: {joined}."


def _size_error(value: int) -> str | None:
    if value == 0:
        return "cannot be blank"
    if value < 1:
        return "must be no less than 1"
    return None


def _name_error(name: str) -> str | None:
    return None if not name or NAME_PATTERN.match(name) else "must be in a valid format"


@dataclass(frozen=True)
class CreateRequest:
    size: int
    name: str
    clusters: list[str]
    durability: dict[str, Any]
    gid: int
    options: list[str]
    block: bool
    snapshot_enable: bool
    snapshot_factor: float
    set_width: int = field(default=1)
    data_bricks: int = field(default=1)


def parse_create(body: bytes) -> CreateRequest:
    """Steps 1-7 of heketi-api.md's POST /volumes checks (those needing no state)."""
    msg = decode_body(body, CREATE_SCHEMA)
    errors = {
        key: err
        for key, err in (("size", _size_error(msg["size"])), ("name", _name_error(msg["name"])))
        if err
    }
    if errors:
        raise Invalid(_validation_text(errors))
    gid = msg["gid"]
    if gid < 0:
        raise Invalid("Bad group id less than zero")
    if gid >= GID_LIMIT:
        raise Invalid("Bad group id equal or greater than 2**32")
    durability = msg["durability"]
    kind = durability["type"] or "none"
    if kind not in ("none", "replicate", "disperse"):
        raise Invalid("Unknown durability type")
    snapshot = msg["snapshot"]
    factor = float(snapshot["factor"])
    if snapshot["enable"] and not 1 <= factor <= MAX_SNAPSHOT_FACTOR:
        raise Invalid("Invalid snapshot factor")
    width, data = 1, 1
    if kind == "replicate":
        replica = durability["replicate"]["replica"]
        if replica > 3:
            raise Invalid("Invalid replica value")
        # Placement uses 2 when omitted; the stored request keeps it empty.
        width = replica if replica > 0 else 2
    if kind == "disperse":
        d, r = durability["disperse"]["data"], durability["disperse"]["redundancy"]
        if (d, r) not in DISPERSE_COMBINATIONS:
            raise Invalid(f"Invalid dispersion combination: {d}+{r}")
        width, data = d + r, d
    stored = {
        "type": kind,
        "replicate": dict(durability["replicate"]) if kind == "replicate" else {},
        "disperse": dict(durability["disperse"]) if kind == "disperse" else {},
    }
    return CreateRequest(
        size=msg["size"],
        name=msg["name"],
        clusters=list(msg["clusters"]),
        durability=stored,
        gid=gid,
        options=list(msg["glustervolumeoptions"]),
        block=msg["block"],
        snapshot_enable=snapshot["enable"],
        snapshot_factor=factor if snapshot["enable"] else 1.0,
        set_width=width,
        data_bricks=data,
    )


def minimum_size_error(request: CreateRequest) -> str | None:
    """Step 9: at least 1 GiB per data brick of a set, compared in KiB like Heketi."""
    minimum = KIB_PER_GIB * request.data_bricks
    if request.size * KIB_PER_GIB < minimum:
        return (
            f"Requested volume size ({request.size} GB) is smaller than the minimum "
            f"supported volume size ({minimum})"
        )
    return None


def parse_expand(body: bytes) -> int:
    msg = decode_body(body, EXPAND_SCHEMA)
    error = _size_error(msg["expand_size"])
    if error:
        raise Invalid(_validation_text({"expand_size": error}))
    return int(msg["expand_size"])


def parse_clone(body: bytes) -> str:
    msg = decode_body(body, CLONE_SCHEMA)
    error = _name_error(msg["name"])
    if error:
        raise Invalid(_validation_text({"name": error}))
    return str(msg["name"])

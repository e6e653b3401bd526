"""Typed reads from Heketi's JSON, each failure naming the field and what was expected.

The models' ``from_json`` used to trust the TypedDicts, which only tell mypy what
Heketi *should* send. A Heketi (or anything impersonating one) that sends a string for
a size, a list for a name or ``true`` for a gid would then raise ``TypeError`` from
deep inside the provisioner, or worse, flow on: a non-id in ``cluster`` or a brick's
``device`` ends up in paths and PV annotations. Here every read checks its type and
raises ``MalformedResponse`` with the field's path (``bricks[2].size``) instead.

Go's ``encoding/json`` writes a nil slice or map as ``null``, so optional lists and
maps accept ``null`` as empty, as the earlier ``x or ()`` did.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

from heketi_client.errors import MalformedResponse

_ID = re.compile(r"[0-9a-f]{32}")
"""Heketi ids (volumes, clusters, nodes, devices, bricks, queue entries)."""

_ID_TEXT = "an id (32 lowercase hexadecimal characters)"

_MISSING: Any = object()


def is_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _found(value: object) -> str:
    """How to name an unexpected value without quoting much of it."""
    if value is _MISSING:
        return "nothing (the field is missing)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "..."
        return f"the string {shown!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class Fields:
    """One JSON object, read field by field; ``where`` is its path in the document."""

    def __init__(self, data: object, where: str = "") -> None:
        if not isinstance(data, dict):
            _fail(where or "(the whole answer)", "a JSON object", data)
        self._data: dict[str, Any] = data
        self._where = where

    def at(self, key: str) -> str:
        return f"{self._where}.{key}" if self._where else key

    def _get(self, key: str, default: Any) -> Any:
        value = self._data.get(key, _MISSING)
        if value is _MISSING and default is not _MISSING:
            return default
        return value

    def has(self, key: str) -> bool:
        return key in self._data

    def text(self, key: str, default: Any = _MISSING) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            _fail(self.at(key), "a string", value)
        return value

    def integer(self, key: str, default: Any = _MISSING, *, minimum: int | None = None) -> int:
        value = self._get(key, default)
        # bool is an int in Python, but never one in Heketi's JSON.
        if not isinstance(value, int) or isinstance(value, bool):
            _fail(self.at(key), "an integer", value)
        if minimum is not None and value < minimum:
            _fail(self.at(key), f"an integer of at least {minimum}", value)
        return value

    def number(self, key: str, default: Any = _MISSING) -> float:
        value = self._get(key, default)
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            _fail(self.at(key), "a number", value)
        return float(value)

    def flag(self, key: str, default: Any = _MISSING) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            _fail(self.at(key), "true or false", value)
        return value

    def ident(self, key: str) -> str:
        value = self._get(key, _MISSING)
        if not is_id(value):
            _fail(self.at(key), _ID_TEXT, value)
        return str(value)

    def texts(self, key: str, *, required: bool = False) -> tuple[str, ...]:
        return tuple(self._list(key, "a string", required, lambda v: isinstance(v, str)))

    def idents(self, key: str, *, required: bool = False) -> tuple[str, ...]:
        return tuple(self._list(key, _ID_TEXT, required, is_id))

    def text_map(self, key: str) -> dict[str, str]:
        value = self._get(key, None)
        if value is None:
            return {}
        if not isinstance(value, dict):
            _fail(self.at(key), "an object of strings", value)
        for name, item in value.items():
            if not isinstance(item, str):
                _fail(f"{self.at(key)}.{name}", "a string", item)
        return dict(value)

    def obj(self, key: str, *, required: bool = True) -> Fields:
        value = self._get(key, _MISSING if required else None)
        return Fields({} if value is None and not required else value, self.at(key))

    def objs(self, key: str, *, required: bool = False) -> Iterator[Fields]:
        for n, item in enumerate(self._list(key, "an object", required, lambda v: True)):
            yield Fields(item, f"{self.at(key)}[{n}]")

    def _list(self, key: str, what: str, required: bool, ok: Callable[[Any], bool]) -> list[Any]:
        value = self._get(key, _MISSING if required else None)
        if value is None and not required:
            return []
        if not isinstance(value, list):
            _fail(self.at(key), "a list", value)
        for n, item in enumerate(value):
            if not ok(item):
                _fail(f"{self.at(key)}[{n}]", what, item)
        return value


def _fail(field: str, expected: str, value: object) -> NoReturn:
    raise MalformedResponse(field, expected, _found(value))

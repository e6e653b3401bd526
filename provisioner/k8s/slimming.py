"""Slim copies of API objects for the informers' caches: only the declared fields,
with shared strings stored once.

At 50,000 PVs what a cache keeps per object decides the size of the process.  A
parsed JSON object costs far more than its text: every dict key is a new string
object (``json`` shares keys only within one document), and so are the values that
repeat across objects (``"Bound"``, the class name, the Heketi URL).  A ``Fields``
declaration says, per level, which keys stay and whether their strings repeat
across objects (``SHARED``: stored once, via ``sys.intern``) or are unique
(``UNIQUE``: kept as they are; interning them would only grow the intern table).
Keys are always interned: there are few of them.

A level that lists its keys without a ``"*"`` default is a ``SlimObject``: asking it
for a key that the declaration dropped raises ``DroppedField`` instead of quietly
answering None, so a reader added later fails loudly in the tests rather than
seeing "absent" for a field the API server did send.

A slim copy is for reading.  Anything written back to the API server must start
from a fresh GET or the full object: an update built from a slim copy would erase
the dropped fields.  (A merge patch of a kept field, with its resourceVersion as
precondition, is fine: it names only what it changes.)
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["COMMON", "SHARED", "UNIQUE", "DroppedField", "Fields", "SlimObject", "slim"]

_intern = sys.intern


class _Rule:
    """A leaf rule: keep the whole value; ``shared`` says whether its strings repeat."""

    __slots__ = ("name", "shared")

    def __init__(self, name: str, *, shared: bool) -> None:
        self.name = name
        self.shared = shared

    def __repr__(self) -> str:
        return self.name


SHARED = _Rule("SHARED", shared=True)
"""Keep the value whole; its strings repeat across objects (intern them)."""

UNIQUE = _Rule("UNIQUE", shared=False)
"""Keep the value whole; its strings are unique per object (leave them as they are)."""

COMMON = _Rule("COMMON", shared=True)
"""Keep the value whole; the whole value is usually the same in many objects (a
claim's access modes, a bound claim's status, a finalizer list): equal values are
stored once and shared, which is safe because cached objects are never changed."""

COMMON_LIMIT = 20_000
"""At most this many distinct ``COMMON`` values are remembered; when full, the memory
starts afresh (values already shared stay with the objects that hold them)."""

COMMON_MAX_CHARS = 1024
"""Only values of at most this many characters (keys and strings) are remembered.
Tenants write claims: a tenant creating claims with large unique annotations must
not make the memory keep them after the claims are gone (at most
COMMON_LIMIT x COMMON_MAX_CHARS, about 20 MB, is ever held by it)."""

_common: dict[Any, Any] = {}


class DroppedField(KeyError):
    """A reader asked a slim cached object for a field its declaration dropped."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "dropped field"


class SlimObject(dict[str, Any]):
    """A dict whose level was declared key by key (see the module docstring).

    Subclasses (one per declared level, made by ``Fields``) carry the kept names in
    ``KEPT`` and the level's path in ``WHERE``; ``__slots__`` keeps them as small as
    a dict.
    """

    __slots__ = ()
    KEPT: ClassVar[frozenset[str]] = frozenset()
    WHERE: ClassVar[str] = ""

    def _dropped(self, key: object) -> DroppedField:
        return DroppedField(
            f"{self.WHERE}.{key} is not kept in the informer cache: add it to the "
            "declaration in provisioner/controller/cache_fields.py (or read the object "
            "from the API server)"
        )

    def __missing__(self, key: str) -> Any:
        if key in self.KEPT:
            raise KeyError(key)
        raise self._dropped(key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if key in self:
            return dict.__getitem__(self, key)
        if key in self.KEPT:
            return default
        raise self._dropped(key)


@dataclass(frozen=True)
class Fields:
    """One level of a declaration: ``keep`` maps each kept key to its rule (a leaf
    rule or the ``Fields`` of the level below); the key ``"*"`` is the rule for
    every key not listed (without it, unlisted keys are dropped)."""

    where: str
    keep: Mapping[str, Any]
    common: bool = False
    """After slimming, share equal copies of this level (as ``COMMON`` does)."""
    _type: type[dict[str, Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if "*" in self.keep:
            kind: type[dict[str, Any]] = dict
        else:
            kind = type(
                "Slim_" + self.where.replace(".", "_"),
                (SlimObject,),
                {"__slots__": (), "KEPT": frozenset(self.keep), "WHERE": self.where},
            )
        object.__setattr__(self, "_type", kind)

    def child(self, key: str) -> Any:
        return self.keep.get(key) or self.keep.get("*")


def slim(value: Any, rule: Any) -> Any:
    """``value`` as ``rule`` declares it (a new object; ``value`` is not changed).

    Within one object, equal unique strings are stored once too (a PV's name is
    also its volume path; its endpoints name is in an annotation and in the spec).
    """
    return _slim(value, rule, {})


def _slim(value: Any, rule: Any, seen: dict[str, str]) -> Any:
    if isinstance(rule, Fields):
        if not isinstance(value, dict):
            return _whole(value, True, seen)
        out = rule._type()
        for key, item in value.items():
            sub = rule.child(key)
            if sub is not None:
                out[_intern(key)] = _slim(item, sub, seen)
        if rule.common and _size(out, COMMON_MAX_CHARS) <= COMMON_MAX_CHARS:
            key = (rule.where, _frozen(out))
            found = _common.get(key)
            if found is not None:
                return found
            _remember(key, out)
        return out
    if rule is COMMON:
        return _shared_copy(value, seen)
    return _whole(value, rule.shared, seen)


def _shared_copy(value: Any, seen: dict[str, str]) -> Any:
    """The one stored copy of ``value`` (see ``COMMON``)."""
    if not isinstance(value, (dict, list)):
        return _whole(value, True, seen)
    if _size(value, COMMON_MAX_CHARS) > COMMON_MAX_CHARS:
        return _whole(value, True, seen)
    key = _frozen(value)
    found = _common.get(key)
    if found is None:
        found = _whole(value, True, seen)
        _remember(key, found)
    return found


def _remember(key: Any, value: Any) -> None:
    if len(_common) >= COMMON_LIMIT:
        _common.clear()  # races only cost a duplicate copy
    _common[key] = value


def _size(value: Any, budget: int) -> int:
    """Characters in a JSON value (keys and strings), counted until past ``budget``."""
    if isinstance(value, str):
        return len(value)
    total = 0
    if isinstance(value, dict):
        for k, v in value.items():
            total += len(k) + _size(v, budget - total)
            if total > budget:
                break
    elif isinstance(value, list):
        for v in value:
            total += _size(v, budget - total)
            if total > budget:
                break
    return total


def _frozen(value: Any) -> Any:
    """A hashable form of a JSON value; types are tagged so that 1, 1.0, True differ."""
    if isinstance(value, dict):
        return ("d", *((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("l", *(_frozen(v) for v in value))
    return (type(value), value)


def _whole(value: Any, shared: bool, seen: dict[str, str]) -> Any:
    if isinstance(value, str):
        if shared:
            value = _intern(value)
            seen.setdefault(value, value)
            return value
        return seen.setdefault(value, value)
    if isinstance(value, dict):
        return {_intern(k): _whole(v, shared, seen) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole(v, shared, seen) for v in value]
    return value

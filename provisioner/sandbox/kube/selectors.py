"""Label and field selectors, parsed once per request and matched per object.

The grammar follows apimachinery's: labels support ``=``, ``==``, ``!=``, ``in``,
``notin``, ``key`` (exists) and ``!key``; fields support ``=``, ``==`` and ``!=`` on the
fields each resource declares selectable (an unknown field is a 400, as on a real
server).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .resources import ResourceType
from .status import bad_request

Obj = dict[str, Any]


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and labels[self.key] in self.values
        # "!=" and "notin" also match objects that lack the key, like apimachinery.
        return not present or labels[self.key] not in self.values


_SET_RE = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    if not text:
        return ()
    reqs: list[Requirement] = []
    for part in _split_top_level(text):
        m = _SET_RE.match(part)
        if m:
            values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(m.group(1), m.group(2), values))
        elif part.startswith("!"):
            reqs.append(Requirement(part[1:].strip(), "!"))
        elif "!=" in part:
            key, _, value = part.partition("!=")
            reqs.append(Requirement(key.strip(), "!=", frozenset({value.strip()})))
        elif "=" in part:
            key, _, value = part.partition("==" if "==" in part else "=")
            reqs.append(Requirement(key.strip(), "=", frozenset({value.strip()})))
        elif re.fullmatch(r"[A-Za-z0-9./_-]+", part):
            reqs.append(Requirement(part, "exists"))
        else:
            raise bad_request(f"unable to parse requirement: {part!r}")
    return tuple(reqs)


def parse_field_selector(text: str | None, rt: ResourceType) -> tuple[tuple[str, str, str], ...]:
    """Return (field, op, value) triples; rejects fields the resource does not index."""
    if not text:
        return ()
    out: list[tuple[str, str, str]] = []
    for part in _split_top_level(text):
        if "!=" in part:
            key, _, value = part.partition("!=")
            op = "!="
        elif "=" in part:
            key, _, value = part.partition("==" if "==" in part else "=")
            op = "="
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        key = key.strip()
        if rt.field_value({}, key) is None:
            raise bad_request(f"field label not supported: {key}")
        out.append((key, op, value.strip()))
    return tuple(out)


def compile_filter(
    rt: ResourceType, label_selector: str | None, field_selector: str | None
) -> Callable[[Obj], bool] | None:
    """A predicate for objects, or None when nothing is selected (the fast path)."""
    labels = parse_label_selector(label_selector)
    fields = parse_field_selector(field_selector, rt)
    if not labels and not fields:
        return None

    def match(obj: Obj) -> bool:
        if labels:
            obj_labels = (obj.get("metadata") or {}).get("labels") or {}
            if not all(r.matches(obj_labels) for r in labels):
                return False
        for key, op, value in fields:
            actual = rt.field_value(obj, key)
            if (actual == value) != (op == "="):
                return False
        return True

    return match

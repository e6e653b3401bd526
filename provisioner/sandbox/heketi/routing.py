"""The route table: which templates exist and how a path maps onto one.

Like Heketi's gorilla/mux router, ids in paths must be hex; anything else does not
match a route at all and gets 404 `Invalid path or request`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROUTES: tuple[tuple[str, str], ...] = (
    ("GET", "/hello"),
    ("GET", "/metrics"),
    ("GET", "/operations"),
    ("GET", "/clusters"),
    ("POST", "/clusters"),
    ("GET", "/clusters/{id}"),
    ("GET", "/nodes/{id}"),
    ("GET", "/devices/{id}"),
    ("GET", "/volumes"),
    ("POST", "/volumes"),
    ("GET", "/volumes/{id}"),
    ("DELETE", "/volumes/{id}"),
    ("POST", "/volumes/{id}/expand"),
    ("POST", "/volumes/{id}/clone"),
    ("GET", "/blockvolumes"),
    ("POST", "/blockvolumes"),
    ("GET", "/blockvolumes/{id}"),
    ("DELETE", "/blockvolumes/{id}"),
    ("GET", "/queue/{id}"),
)


def _compile(template: str) -> re.Pattern[str]:
    return re.compile("^" + template.replace("{id}", "(?P<id>[A-Fa-f0-9]+)") + "$")


_PATTERNS = [(method, template, _compile(template)) for method, template in ROUTES]


@dataclass(frozen=True)
class Match:
    template: str | None  # None: no route has this path
    method_ok: bool
    id: str | None = None


def match(method: str, path: str) -> Match:
    path_matched: str | None = None
    for route_method, template, pattern in _PATTERNS:
        found = pattern.match(path)
        if found is None:
            continue
        if route_method == method:
            return Match(template, True, found.groupdict().get("id"))
        path_matched = template
    return Match(path_matched, False)


def route_key(method: str, path: str) -> str:
    """`"GET /volumes/{id}"` for known paths; the raw path otherwise."""
    found = match(method, path)
    return f"{method} {found.template or path}"

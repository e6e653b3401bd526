"""What the differential fidelity tests share: answers flattened to dotted fields, the
two records compared field by field, and the allowlist check (an unlisted difference
fails; a listed one that no longer differs fails too, so the list stays true).

Used by test_differential_heketi.py (the Heketi simulator) and
test_differential_kube.py (the Kubernetes API sandbox)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

Record = dict[str, Any]
# (step, field pattern (fnmatch), reason)
Allowlist = list[tuple[str, str, str]]
Difference = tuple[str, str, Any, Any]


def flatten(value: Any, prefix: str, out: Record, norm: Callable[[str], str]) -> None:
    """Dicts become dotted paths, lists of objects ``[i]`` paths (plus a ``[]`` count);
    strings go through ``norm``; other scalars also record their type."""
    if isinstance(value, dict):
        if not value:
            out[prefix] = {}
        for k, v in value.items():
            flatten(v, f"{prefix}.{k}", out, norm)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        out[prefix + "[]"] = len(value)
        for i, v in enumerate(value):
            flatten(v, f"{prefix}[{i}]", out, norm)
    elif isinstance(value, list):
        out[prefix] = [norm(v) if isinstance(v, str) else v for v in value]
    elif isinstance(value, str):
        out[prefix] = norm(value)
    else:
        out[prefix] = value
        out[prefix + ":type"] = type(value).__name__


def differences(
    steps: Iterable[str], sandbox: dict[str, Record], real: dict[str, Record]
) -> list[Difference]:
    out = []
    for step in steps:
        s, r = sandbox[step], real[step]
        for field in sorted(set(s) | set(r)):
            a, b = s.get(field, "<absent>"), r.get(field, "<absent>")
            if a != b:
                out.append((step, field, a, b))
    return out


def allowed(allowlist: Allowlist, step: str, field: str) -> bool:
    return any(
        fnmatch.fnmatchcase(step, s) and fnmatch.fnmatchcase(field, f) for s, f, _ in allowlist
    )


def check_against_allowlist(found: list[Difference], allowlist: Allowlist) -> None:
    """Fail on differences outside the allowlist and on entries that matched nothing."""
    unexpected = [d for d in found if not allowed(allowlist, d[0], d[1])]
    assert not unexpected, "differences outside the allowlist (step, field, sandbox, real):\n" + (
        "\n".join(f"  {s} {f}: sandbox={a!r} real={b!r}" for s, f, a, b in unexpected)
    )
    used = {
        (s, f)
        for s, f, _ in allowlist
        if any(fnmatch.fnmatchcase(d[0], s) and fnmatch.fnmatchcase(d[1], f) for d in found)
    }
    stale = [(s, f) for s, f, _ in allowlist if (s, f) not in used]
    assert not stale, f"allowlist entries that no longer differ (remove them): {stale}"

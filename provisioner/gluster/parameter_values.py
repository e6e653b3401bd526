"""One StorageClass parameter value at a time: its checks, and the error they raise.

Each check names the parameter as the user spelled it; values are quoted, truncated
to 64 characters (never the key's: ``parameters`` scrubs it from every message).
The order in which they run, and the parameters as a whole, are ``parameters``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from heketi_client.models import Durability

__all__ = [
    "DEFAULT_DURABILITY",
    "DISPERSE_COMBINATIONS",
    "GID_MAX_DEFAULT",
    "GID_MIN_DEFAULT",
    "MAX_REPLICA",
    "ParameterError",
    "VolumeDurability",
    "parse_cluster_ids",
    "parse_gids",
    "parse_rest_url",
    "parse_snap_factor",
    "parse_volume_options",
    "parse_volume_type",
    "quote",
]

GID_MIN_DEFAULT = 2000
# Heketi answers 400 for gid >= 2**31 - 1, so the in-tree default of 2147483647
# could never be handed out; the usable top is one below.
GID_MAX_DEFAULT = 2147483646
MAX_REPLICA = 3  # Heketi: "Invalid replica value" above 3
DISPERSE_COMBINATIONS = frozenset({(2, 1), (4, 2), (8, 3), (8, 4)})  # all Heketi accepts

_CLUSTER_ID = re.compile(r"[0-9a-f]{32}")
_UNSIGNED = re.compile(r"[0-9]+")
_QUOTE_LIMIT = 64
_INT32_MAX = 2147483647


class ParameterError(ValueError):
    """A StorageClass parameter is unusable; retrying will not help."""

    def __init__(self, parameter: str, reason: str) -> None:
        self.parameter = parameter
        self.reason = reason
        super().__init__(f'StorageClass parameter "{parameter}": {reason}')


@dataclass(frozen=True)
class VolumeDurability:
    """Durability as the class asked for it; ``to_heketi`` builds the request part.

    Kept separate from ``heketi_client.models.Durability`` so parsing does not
    depend on the client being importable.
    """

    type: str  # "none" | "replicate" | "disperse"
    replica: int | None = None
    data: int | None = None
    redundancy: int | None = None

    def to_heketi(self) -> Durability:
        from heketi_client.models import Durability

        if self.type == "replicate":
            return Durability.replicate(self.replica or 3)
        if self.type == "disperse":
            return Durability.disperse(self.data or 0, self.redundancy or 0)
        return Durability.none()


DEFAULT_DURABILITY = VolumeDurability("replicate", replica=3)
"""No ``volumetype``: three replicas, as in-tree."""


def quote(value: str) -> str:
    if len(value) > _QUOTE_LIMIT:
        value = value[:_QUOTE_LIMIT] + "..."
    return f'"{value}"'


def parse_rest_url(name: str, value: str | None) -> str:
    if not value:
        raise ParameterError(name, "is required (the Heketi server URL, e.g. http://heketi:8080)")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ParameterError(name, "is not a valid URL") from None
    if parts.username is not None or parts.password is not None:
        # Not quoted: it carries credentials.
        raise ParameterError(name, "must not contain credentials; use restuser and a Secret")
    if parts.scheme.lower() not in ("http", "https"):
        raise ParameterError(name, f"{quote(value)} must be an http:// or https:// URL")
    if not host:
        raise ParameterError(name, f"{quote(value)} has no host")
    if parts.query or parts.fragment:
        raise ParameterError(name, f"{quote(value)} must not have a query or fragment")
    return value


def parse_cluster_ids(name: str, value: str | None, warnings: list[str]) -> tuple[str, ...]:
    """In-tree split on commas and asked Heketi; an empty entry (a trailing comma) is
    dropped with a warning, an id Heketi could never know is refused (Heketi would)."""
    if not value:
        return ()
    ids: list[str] = []
    for entry in value.split(","):
        entry = entry.strip()
        if not entry:
            warnings.append(f'StorageClass parameter "{name}": empty entry ignored')
            continue
        if not _CLUSTER_ID.fullmatch(entry):
            raise ParameterError(
                name,
                f"{quote(entry)} is not a Heketi cluster id (32 lowercase hexadecimal characters)",
            )
        if entry not in ids:
            ids.append(entry)
    return tuple(ids)


def _parse_gid(name: str, value: str) -> int:
    # In-tree used strconv.ParseInt: a leading "+" was fine, anything past 32 bits not.
    digits = value[1:] if value.startswith("+") else value
    if not _UNSIGNED.fullmatch(digits) or int(digits) > _INT32_MAX:
        raise ParameterError(name, f"{quote(value)} is not a non-negative 32-bit integer")
    return int(digits)


def parse_gids(
    low: tuple[str, str | None], high: tuple[str, str | None], warnings: list[str]
) -> tuple[int, int]:
    (min_name, min_value), (max_name, max_value) = low, high
    gid_min = GID_MIN_DEFAULT if min_value is None else _parse_gid(min_name, min_value)
    gid_max = GID_MAX_DEFAULT if max_value is None else _parse_gid(max_name, max_value)
    if gid_min < GID_MIN_DEFAULT:
        raise ParameterError(min_name, f"{gid_min} is below the minimum of {GID_MIN_DEFAULT}")
    if gid_min > GID_MAX_DEFAULT:
        raise ParameterError(
            min_name, f"{gid_min} is above {GID_MAX_DEFAULT}, the largest GID Heketi accepts"
        )
    if gid_max > GID_MAX_DEFAULT:
        # In-tree accepted up to 2147483647 (its own default); Heketi refuses that one
        # GID, so the range loses its top and the class keeps working.
        warnings.append(
            f'StorageClass parameter "{max_name}": {gid_max} is above {GID_MAX_DEFAULT}, the '
            f"largest GID Heketi accepts; using {GID_MAX_DEFAULT}"
        )
        gid_max = GID_MAX_DEFAULT
    if gid_max < gid_min:
        raise ParameterError(max_name, f"{gid_max} is below gidMin ({gid_min})")
    return gid_min, gid_max


def _parse_count(name: str, whole: str, part: str, what: str) -> int:
    part = part.strip()
    if not _UNSIGNED.fullmatch(part):
        raise ParameterError(name, f"{quote(whole)}: {what} must be a non-negative integer")
    return int(part)


def parse_volume_type(name: str, value: str | None, warnings: list[str]) -> VolumeDurability:
    """In-tree's reading: ``replicate[:N]``, ``disperse:D:R``, ``none``; parts past
    those it used were ignored (kept so, with a warning); a count of 0 is Heketi's
    default (3 replicas; disperse 4:2)."""
    if not value:
        return DEFAULT_DURABILITY
    parts = value.split(":")
    kind = parts[0].strip().lower()
    used = {"none": 1, "replicate": 2, "disperse": 3}.get(kind)
    if used is not None and len(parts) > used:
        warnings.append(
            f'StorageClass parameter "{name}": {quote(value)} has more parts than '
            f"{kind} takes; the extra ones are ignored"
        )
        parts = parts[:used]
    if kind == "none":
        return VolumeDurability("none")
    if kind == "replicate":
        replica = 3 if len(parts) == 1 else _parse_count(name, value, parts[1], "the replica count")
        if replica > MAX_REPLICA:
            raise ParameterError(
                name, f"{quote(value)}: Heketi supports at most {MAX_REPLICA} replicas"
            )
        return VolumeDurability("replicate", replica=replica or 3)
    if kind == "disperse" and len(parts) == 3:
        data = _parse_count(name, value, parts[1], "the data count") or 4
        redundancy = _parse_count(name, value, parts[2], "the redundancy count") or 2
        if (data, redundancy) not in DISPERSE_COMBINATIONS:
            allowed = ", ".join(f"disperse:{d}:{r}" for d, r in sorted(DISPERSE_COMBINATIONS))
            raise ParameterError(name, f"{quote(value)}: Heketi accepts only {allowed}")
        return VolumeDurability("disperse", data=data, redundancy=redundancy)
    raise ParameterError(
        name, f"{quote(value)} must be replicate[:N], disperse:DATA:REDUNDANCY or none"
    )


def parse_volume_options(name: str, value: str | None, warnings: list[str]) -> tuple[str, ...]:
    """Comma-separated Gluster options, passed on as in-tree did. Empty entries (a
    trailing comma) are dropped; an entry without a value is passed on with a
    warning (Gluster, not Heketi, refuses it when the volume is set up)."""
    if not value:
        return ()
    options: list[str] = []
    for entry in value.split(","):
        words = entry.split(None, 1)
        if not words:
            warnings.append(f'StorageClass parameter "{name}": empty entry ignored')
            continue
        if len(words) == 1:
            warnings.append(
                f'StorageClass parameter "{name}": entry {quote(words[0])} has no value '
                '(expected "<option> <value>", e.g. "client.ssl on")'
            )
            options.append(words[0])
            continue
        options.append(f"{words[0]} {words[1].strip()}")
    return tuple(options)


def parse_snap_factor(name: str, value: str | None) -> float | None:
    if not value:
        return None
    try:
        factor = float(value)
    except ValueError:
        raise ParameterError(name, f"{quote(value)} is not a number") from None
    if not math.isfinite(factor) or not 1 <= factor <= 100:
        raise ParameterError(name, f"{quote(value)} must be between 1 and 100")
    return factor

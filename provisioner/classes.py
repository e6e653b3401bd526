"""StorageClass parameters of the in-tree ``kubernetes.io/glusterfs`` provisioner.

Operators migrating to us keep their StorageClasses, so we accept exactly the in-tree
keys (case-insensitively) and parse them once, up front, into a frozen dataclass: a
bad class is reported on the claim before anything touches Heketi.

Error policy: the *first* problem is reported (checks run in a fixed order: key
names, then each parameter in the order of the table in COMPATIBILITY.md), so the
message on the claim is short and stable. Every message names the parameter as the
user spelled it. The ``restuserkey`` value never appears in a message: it is never
quoted, and as a last line of defence any occurrence is scrubbed before raising.
Other values are quoted, truncated to 64 characters.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from provisioner.secrets import SecretError, secret_key

if TYPE_CHECKING:
    from heketi_client.models import Durability

__all__ = [
    "DEFAULT_ENDPOINTS_PREFIX",
    "GID_MAX_DEFAULT",
    "GID_MIN_DEFAULT",
    "GlusterClassParameters",
    "ParameterError",
    "SecretError",
    "VolumeDurability",
    "parse_class_parameters",
    "secret_key",
]

GID_MIN_DEFAULT = 2000
# Heketi answers 400 for gid >= 2**31 - 1, so the in-tree default of 2147483647
# could never be handed out; the usable top is one below.
GID_MAX_DEFAULT = 2147483646
DEFAULT_ENDPOINTS_PREFIX = "glusterfs-dynamic"
# <prefix>-<36-char uid> must fit a 63-character Service name.
MAX_ENDPOINTS_PREFIX = 26
MAX_REPLICA = 3  # Heketi: "Invalid replica value" above 3
DISPERSE_COMBINATIONS = frozenset({(2, 1), (4, 2), (8, 3), (8, 4)})  # all Heketi accepts

_KNOWN_KEYS = (
    "resturl",
    "restauthenabled",
    "restuser",
    "restuserkey",
    "secretnamespace",
    "secretname",
    "clusterid",
    "gidmin",
    "gidmax",
    "volumetype",
    "volumeoptions",
    "volumenameprefix",
    "snapfactor",
    "customepnameprefix",
)
_CLUSTER_ID = re.compile(r"[0-9a-f]{32}")
_UNSIGNED = re.compile(r"[0-9]+")
_NAME_PREFIX = re.compile(r"[a-zA-Z0-9-]+")
# Endpoints share their name with a Service, and Service names are DNS-1035 labels:
# lowercase alphanumerics and '-', starting with a letter. The uid follows the
# prefix after a '-', so the prefix itself may end with anything allowed.
_ENDPOINTS_PREFIX = re.compile(r"[a-z][-a-z0-9]*")
_REST_USERS = ("admin", "user")
_QUOTE_LIMIT = 64


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


@dataclass(frozen=True)
class GlusterClassParameters:
    """Everything a StorageClass says about its volumes, validated.

    ``auth_enabled`` is the ``restauthenabled`` switch (on unless set to something
    other than "true"); with it off, user, key and secret are cleared as in-tree.
    With it on, ``rest_user`` may still be empty (a Heketi run with auth disabled).
    The key to use is ``rest_user_key`` unless a secret is named: the secret wins.
    """

    rest_url: str
    auth_enabled: bool = True
    rest_user: str = ""
    rest_user_key: str = field(default="", repr=False)
    secret_namespace: str | None = None
    secret_name: str | None = None
    cluster_ids: tuple[str, ...] = ()
    gid_min: int = GID_MIN_DEFAULT
    gid_max: int = GID_MAX_DEFAULT
    durability: VolumeDurability = VolumeDurability("replicate", replica=3)
    volume_options: tuple[str, ...] = ()
    volume_name_prefix: str | None = None
    snap_factor: float | None = None
    endpoints_prefix: str = DEFAULT_ENDPOINTS_PREFIX
    warnings: tuple[str, ...] = ()

    @property
    def uses_secret(self) -> bool:
        return self.secret_name is not None


def _quote(value: str) -> str:
    if len(value) > _QUOTE_LIMIT:
        value = value[:_QUOTE_LIMIT] + "..."
    return f'"{value}"'


def parse_class_parameters(params: Mapping[str, str]) -> GlusterClassParameters:
    """Validate ``StorageClass.parameters``; raise ``ParameterError`` on the first problem."""
    # Scrub both spellings: messages quote stripped values.
    secrets = {
        text
        for key, value in params.items()
        if str(key).lower() == "restuserkey" and isinstance(value, str)
        for text in (value, value.strip())
        if text
    }
    try:
        return _parse(params)
    except ParameterError as err:
        parameter, reason = err.parameter, err.reason
        for text in sorted(secrets, key=len, reverse=True):
            parameter = parameter.replace(text, "<redacted>")
            reason = reason.replace(text, "<redacted>")
        if (parameter, reason) != (err.parameter, err.reason):
            raise ParameterError(parameter, reason) from None
        raise


def _normalise_keys(params: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Map lowercased key → (key as written, value), rejecting unknown and duplicate keys."""
    found: dict[str, tuple[str, str]] = {}
    for raw_key, value in params.items():
        key = str(raw_key)
        lower = key.lower()
        if lower not in _KNOWN_KEYS:
            close = difflib.get_close_matches(lower, _KNOWN_KEYS, n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise ParameterError(key, f"unknown parameter{hint}")
        if lower in found:
            first = found[lower][0]
            raise ParameterError(key, f'given twice (also as "{first}"); keys ignore case')
        if not isinstance(value, str):
            raise ParameterError(key, "value must be a string")
        found[lower] = (key, value)
    return found


def _parse(params: Mapping[str, str]) -> GlusterClassParameters:
    found = _normalise_keys(params)
    warnings: list[str] = []

    def get(lower: str) -> tuple[str, str | None]:
        name, value = found.get(lower, (lower, None))
        return name, None if value is None else value.strip()

    rest_url = _parse_rest_url(*get("resturl"))

    name, value = get("restauthenabled")
    auth_enabled = True
    if value is not None:
        auth_enabled = value.lower() == "true"
        warnings.append(
            f'StorageClass parameter "{name}" is deprecated: authentication is implied by restuser'
        )

    name, value = get("restuser")
    rest_user = value or ""
    if rest_user and rest_user not in _REST_USERS:
        # The value is not quoted: a key pasted into the wrong field must not leak.
        raise ParameterError(name, 'must be "admin" or "user" (the Heketi JWT issuer)')

    key_name, value = get("restuserkey")
    rest_user_key = value or ""

    ns_name, secret_namespace = get("secretnamespace")
    sn_name, secret_name = get("secretname")
    secret_namespace = secret_namespace or None
    secret_name = secret_name or None
    if (secret_namespace is None) != (secret_name is None):
        missing = "secretName" if secret_name is None else "secretNamespace"
        present = sn_name if secret_name is not None else ns_name
        raise ParameterError(
            present, f"set both secretNamespace and secretName, or neither ({missing} is missing)"
        )

    if not auth_enabled:
        rest_user, rest_user_key, secret_namespace, secret_name = "", "", None, None
    elif rest_user_key:
        if secret_name is not None:
            warnings.append(
                f'StorageClass parameter "{key_name}" is ignored: the secret '
                f"{secret_namespace}/{secret_name} takes precedence"
            )
        else:
            warnings.append(
                f'StorageClass parameter "{key_name}" is deprecated: put the key in a '
                'Secret of type "kubernetes.io/glusterfs" and use secretNamespace/secretName'
            )
    if auth_enabled and not rest_user and (rest_user_key or secret_name):
        warnings.append(
            "a Heketi key is given but restuser is empty: Heketi rejects such tokens "
            "unless its authentication is disabled"
        )

    cluster_ids = _parse_cluster_ids(*get("clusterid"))
    gid_min, gid_max = _parse_gids(get("gidmin"), get("gidmax"))
    durability = _parse_volume_type(*get("volumetype"))
    volume_options = _parse_volume_options(*get("volumeoptions"))

    name, value = get("volumenameprefix")
    volume_name_prefix = value or None
    if volume_name_prefix is not None:
        if "_" in volume_name_prefix:
            raise ParameterError(
                name,
                f"{_quote(volume_name_prefix)} must not contain '_' "
                "(it separates the parts of the volume name)",
            )
        if not _NAME_PREFIX.fullmatch(volume_name_prefix):
            raise ParameterError(
                name, f"{_quote(volume_name_prefix)} may contain only letters, digits and '-'"
            )

    snap_factor = _parse_snap_factor(*get("snapfactor"))

    name, value = get("customepnameprefix")
    endpoints_prefix = value or DEFAULT_ENDPOINTS_PREFIX
    if len(endpoints_prefix) > MAX_ENDPOINTS_PREFIX:
        raise ParameterError(
            name,
            f"{_quote(endpoints_prefix)} is longer than "
            f"{MAX_ENDPOINTS_PREFIX} characters (the Service name "
            "<prefix>-<claim uid> must fit in 63)",
        )
    if not _ENDPOINTS_PREFIX.fullmatch(endpoints_prefix):
        raise ParameterError(
            name,
            f"{_quote(endpoints_prefix)} must start with a lowercase "
            "letter and contain only lowercase letters, digits and '-' "
            "(it begins a Service name)",
        )

    return GlusterClassParameters(
        rest_url=rest_url,
        auth_enabled=auth_enabled,
        rest_user=rest_user,
        rest_user_key=rest_user_key,
        secret_namespace=secret_namespace,
        secret_name=secret_name,
        cluster_ids=cluster_ids,
        gid_min=gid_min,
        gid_max=gid_max,
        durability=durability,
        volume_options=volume_options,
        volume_name_prefix=volume_name_prefix,
        snap_factor=snap_factor,
        endpoints_prefix=endpoints_prefix,
        warnings=tuple(warnings),
    )


def _parse_rest_url(name: str, value: str | None) -> str:
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
        raise ParameterError(name, f"{_quote(value)} must be an http:// or https:// URL")
    if not host:
        raise ParameterError(name, f"{_quote(value)} has no host")
    if parts.query or parts.fragment:
        raise ParameterError(name, f"{_quote(value)} must not have a query or fragment")
    return value


def _parse_cluster_ids(name: str, value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    ids: list[str] = []
    for entry in value.split(","):
        entry = entry.strip()
        if not entry:
            raise ParameterError(name, f"{_quote(value)} has an empty entry")
        if not _CLUSTER_ID.fullmatch(entry):
            raise ParameterError(
                name,
                f"{_quote(entry)} is not a Heketi cluster id (32 lowercase hexadecimal characters)",
            )
        if entry not in ids:
            ids.append(entry)
    return tuple(ids)


def _parse_gid(name: str, value: str) -> int:
    if not _UNSIGNED.fullmatch(value):
        raise ParameterError(name, f"{_quote(value)} is not a non-negative integer")
    return int(value)


def _parse_gids(low: tuple[str, str | None], high: tuple[str, str | None]) -> tuple[int, int]:
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
        raise ParameterError(
            max_name,
            f"{gid_max} is above {GID_MAX_DEFAULT}: Heketi rejects GIDs of 2147483647 and above",
        )
    if gid_max < gid_min:
        raise ParameterError(max_name, f"{gid_max} is below gidMin ({gid_min})")
    return gid_min, gid_max


def _parse_count(name: str, whole: str, part: str, what: str) -> int:
    part = part.strip()
    if not _UNSIGNED.fullmatch(part) or int(part) < 1:
        raise ParameterError(name, f"{_quote(whole)}: {what} must be a positive integer")
    return int(part)


def _parse_volume_type(name: str, value: str | None) -> VolumeDurability:
    if not value:
        return VolumeDurability("replicate", replica=3)
    parts = value.split(":")
    kind = parts[0].strip().lower()
    if kind == "none" and len(parts) == 1:
        return VolumeDurability("none")
    if kind == "replicate" and len(parts) <= 2:
        replica = 3 if len(parts) == 1 else _parse_count(name, value, parts[1], "the replica count")
        if replica > MAX_REPLICA:
            raise ParameterError(
                name, f"{_quote(value)}: Heketi supports at most {MAX_REPLICA} replicas"
            )
        return VolumeDurability("replicate", replica=replica)
    if kind == "disperse" and len(parts) == 3:
        data = _parse_count(name, value, parts[1], "the data count")
        redundancy = _parse_count(name, value, parts[2], "the redundancy count")
        if (data, redundancy) not in DISPERSE_COMBINATIONS:
            allowed = ", ".join(f"disperse:{d}:{r}" for d, r in sorted(DISPERSE_COMBINATIONS))
            raise ParameterError(name, f"{_quote(value)}: Heketi accepts only {allowed}")
        return VolumeDurability("disperse", data=data, redundancy=redundancy)
    raise ParameterError(
        name, f"{_quote(value)} must be replicate[:N], disperse:DATA:REDUNDANCY or none"
    )


def _parse_volume_options(name: str, value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    options: list[str] = []
    for entry in value.split(","):
        words = entry.split(None, 1)
        if len(words) != 2:
            raise ParameterError(
                name,
                f'entry {_quote(entry.strip())} must be "<option> <value>", e.g. "client.ssl on"',
            )
        options.append(f"{words[0]} {words[1].strip()}")
    return tuple(options)


def _parse_snap_factor(name: str, value: str | None) -> float | None:
    if not value:
        return None
    try:
        factor = float(value)
    except ValueError:
        raise ParameterError(name, f"{_quote(value)} is not a number") from None
    if not math.isfinite(factor) or not 1 <= factor <= 100:
        raise ParameterError(name, f"{_quote(value)} must be between 1 and 100")
    return factor

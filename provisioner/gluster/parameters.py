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
import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from provisioner.gluster.parameter_values import (
    DEFAULT_DURABILITY,
    GID_MAX_DEFAULT,
    GID_MIN_DEFAULT,
    ParameterError,
    VolumeDurability,
    parse_cluster_ids,
    parse_gids,
    parse_rest_url,
    parse_snap_factor,
    parse_volume_options,
    parse_volume_type,
    quote,
)

__all__ = [
    "DEFAULT_ENDPOINTS_PREFIX",
    "GANESHA_OPTION",
    "MAX_ENDPOINTS_PREFIX",
    "PV_TYPE_GLUSTERFS",
    "PV_TYPE_NFS",
    "DeleteCredentials",
    "GlusterClassParameters",
    "delete_credentials",
    "normalise_keys",
    "parse_class_parameters",
]

DEFAULT_ENDPOINTS_PREFIX = "glusterfs-dynamic"
# <prefix>-<36-char uid> must fit a 63-character Service name.
MAX_ENDPOINTS_PREFIX = 26

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
    "pvtype",
    "nfsserver",
)
_NAME_PREFIX = re.compile(r"[a-zA-Z0-9-]+")
# Endpoints share their name with a Service, and Service names are DNS-1035 labels:
# lowercase alphanumerics and '-', starting with a letter. The uid follows the
# prefix after a '-', so the prefix itself may end with anything allowed.
_ENDPOINTS_PREFIX = re.compile(r"[a-z][-a-z0-9]*")
_REST_USERS = ("admin", "user")

PV_TYPE_GLUSTERFS = "glusterfs"
PV_TYPE_NFS = "nfs"
GANESHA_OPTION = "ganesha.enable on"
"""Asks Gluster to export the volume through NFS-Ganesha (``pvtype: nfs``)."""


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
    durability: VolumeDurability = DEFAULT_DURABILITY
    volume_options: tuple[str, ...] = ()
    volume_name_prefix: str | None = None
    snap_factor: float | None = None
    endpoints_prefix: str = DEFAULT_ENDPOINTS_PREFIX
    pv_type: str = PV_TYPE_GLUSTERFS
    nfs_server: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def uses_secret(self) -> bool:
        return self.secret_name is not None

    @property
    def nfs(self) -> bool:
        """The PV mounts the volume over NFS (NFS-Ganesha), not with the glusterfs plugin."""
        return self.pv_type == PV_TYPE_NFS


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


def normalise_keys(
    params: Mapping[str, str], known: Sequence[str] = _KNOWN_KEYS
) -> dict[str, tuple[str, str]]:
    """Map lowercased key → (key as written, value), rejecting unknown and duplicate
    keys; shared by file and block classes so both name a bad key the same way."""
    found: dict[str, tuple[str, str]] = {}
    for raw_key, value in params.items():
        key = str(raw_key)
        lower = key.lower()
        if lower not in known:
            close = difflib.get_close_matches(lower, known, n=1)
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
    found = normalise_keys(params)
    warnings: list[str] = []

    def get(lower: str) -> tuple[str, str | None]:
        name, value = found.get(lower, (lower, None))
        return name, None if value is None else value.strip()

    rest_url = parse_rest_url(*get("resturl"))

    name, value = get("restauthenabled")
    auth_enabled = True
    if value is not None:
        auth_enabled = value.lower() == "true"
        warnings.append(
            f'StorageClass parameter "{name}" is deprecated: authentication is implied by restuser'
        )

    name, value = get("restuser")
    rest_user = value or ""
    if auth_enabled and rest_user and rest_user not in _REST_USERS:
        # In-tree passed any issuer on; Heketi answers 401 for one it does not know,
        # which the claim's event then explains. The value is not quoted: a key
        # pasted into the wrong field must not leak.
        warnings.append(
            f'StorageClass parameter "{name}" is neither "admin" nor "user", the two '
            "issuers Heketi knows: Heketi will refuse its tokens"
        )

    key_name, value = get("restuserkey")
    rest_user_key = value or ""

    ns_name, secret_namespace = get("secretnamespace")
    sn_name, secret_name = get("secretname")
    secret_namespace = secret_namespace or None
    secret_name = secret_name or None
    # In-tree cleared the Secret pair before checking it when auth is off.
    if auth_enabled and (secret_namespace is None) != (secret_name is None):
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

    cluster_ids = parse_cluster_ids(*get("clusterid"), warnings)
    gid_min, gid_max = parse_gids(get("gidmin"), get("gidmax"), warnings)
    durability = parse_volume_type(*get("volumetype"), warnings)
    volume_options = parse_volume_options(*get("volumeoptions"), warnings)

    name, value = get("volumenameprefix")
    volume_name_prefix = value or None
    if volume_name_prefix is not None:
        if "_" in volume_name_prefix:
            raise ParameterError(
                name,
                f"{quote(volume_name_prefix)} must not contain '_' "
                "(it separates the parts of the volume name)",
            )
        if not _NAME_PREFIX.fullmatch(volume_name_prefix):
            raise ParameterError(
                name, f"{quote(volume_name_prefix)} may contain only letters, digits and '-'"
            )

    snap_factor = parse_snap_factor(*get("snapfactor"))

    name, value = get("customepnameprefix")
    endpoints_prefix = value or DEFAULT_ENDPOINTS_PREFIX
    if len(endpoints_prefix) > MAX_ENDPOINTS_PREFIX:
        raise ParameterError(
            name,
            f"{quote(endpoints_prefix)} is longer than "
            f"{MAX_ENDPOINTS_PREFIX} characters (the Service name "
            "<prefix>-<claim uid> must fit in 63)",
        )
    if not _ENDPOINTS_PREFIX.fullmatch(endpoints_prefix):
        raise ParameterError(
            name,
            f"{quote(endpoints_prefix)} must start with a lowercase "
            "letter and contain only lowercase letters, digits and '-' "
            "(it begins a Service name)",
        )

    pv_type, nfs_server, volume_options = _parse_nfs(get, volume_options, warnings)

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
        pv_type=pv_type,
        nfs_server=nfs_server,
        warnings=tuple(warnings),
    )


def _parse_nfs(
    get: Callable[[str], tuple[str, str | None]],
    volume_options: tuple[str, ...],
    warnings: list[str],
) -> tuple[str, str | None, tuple[str, ...]]:
    """``pvtype`` and ``nfsserver``: (pv type, NFS server, volume options to ask for).

    With ``pvtype: nfs`` the volume must be exported by NFS-Ganesha, so
    ``ganesha.enable on`` joins the class's ``volumeoptions``; a class that turns it
    off explicitly contradicts itself and is refused.
    """
    type_name, value = get("pvtype")
    pv_type = (value or PV_TYPE_GLUSTERFS).lower()
    if pv_type not in (PV_TYPE_GLUSTERFS, PV_TYPE_NFS):
        raise ParameterError(
            type_name, f'{quote(value or "")} must be "{PV_TYPE_GLUSTERFS}" or "{PV_TYPE_NFS}"'
        )
    server_name, server = get("nfsserver")
    server = server or None
    if pv_type != PV_TYPE_NFS:
        if server is not None:
            warnings.append(
                f'StorageClass parameter "{server_name}" is ignored: it is used only with '
                f'pvtype "{PV_TYPE_NFS}"'
            )
        return pv_type, None, volume_options
    if server is None:
        raise ParameterError(
            server_name,
            f'is required with pvtype "{PV_TYPE_NFS}" (the NFS-Ganesha host or virtual IP)',
        )
    if not _is_host(server):
        raise ParameterError(
            server_name, f"{quote(server)} must be a host name or an IP address (no port, no path)"
        )
    current = {option.split(" ", 1)[0].lower(): option for option in volume_options}
    ganesha = current.get("ganesha.enable")
    if ganesha is None:
        return pv_type, server, (*volume_options, GANESHA_OPTION)
    if ganesha.split(" ", 1)[-1].strip().lower() not in ("on", "true", "yes", "enable", "1"):
        raise ParameterError(
            "volumeoptions",
            f'{quote(ganesha)} contradicts pvtype "{PV_TYPE_NFS}", which needs "{GANESHA_OPTION}"',
        )
    return pv_type, server, volume_options


_HOST_LABEL = re.compile(r"(?!-)[a-zA-Z0-9-]{1,63}(?<!-)")


def _is_host(value: str) -> bool:
    """An IP address or a DNS name: what ``spec.nfs.server`` accepts."""
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        pass
    if len(value) > 253:
        return False
    return all(_HOST_LABEL.fullmatch(label) for label in value.rstrip(".").split("."))


@dataclass(frozen=True)
class DeleteCredentials:
    """What deleting a volume needs from a StorageClass, and nothing more."""

    rest_url: str
    rest_user: str = ""
    rest_user_key: str = field(default="", repr=False)
    secret_namespace: str | None = None
    secret_name: str | None = None


def delete_credentials(params: Mapping[str, str]) -> DeleteCredentials:
    """The server and credentials of a class, read leniently.

    Deleting needs only these; a class refused for any other parameter (an unknown
    key, a volume type a newer rule refuses) must not make every PV of it
    undeletable. Only a missing or unusable ``resturl`` is an error.
    """
    found: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, str):
            found.setdefault(str(key).lower(), value.strip())
    rest_url = parse_rest_url("resturl", found.get("resturl"))
    if found.get("restauthenabled", "true").lower() != "true":
        return DeleteCredentials(rest_url)
    namespace, name = found.get("secretnamespace") or None, found.get("secretname") or None
    if namespace is None or name is None:
        namespace = name = None
    return DeleteCredentials(
        rest_url,
        rest_user=found.get("restuser", ""),
        rest_user_key=found.get("restuserkey", ""),
        secret_namespace=namespace,
        secret_name=name,
    )

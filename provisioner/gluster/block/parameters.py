"""StorageClass parameters of the ``gluster.org/glusterblock`` provisioner.

The retired external provisioner (kubernetes-retired/external-storage,
``gluster/block``) read these keys, case-insensitively, and refused any other:
``resturl``, ``restuser``, ``restsecretnamespace``/``restsecretname``,
``restauthenabled``, ``hacount`` (default 3), ``chapauthenabled`` (default true),
``clusterids``, ``volumenameprefix``, ``opmode`` and ``blockmodeargs``. Its PVs were
always ``xfs``; ``fstype`` lets a class choose. Only ``opmode: heketi`` (its default)
is served here: its ``gluster-block`` mode ran the CLI inside the provisioner's pod.

As for file classes, the first problem is reported, naming the key as written, and
a class it accepted keeps working: a ``chapauthenabled`` other than "true" turned
CHAP off there, and does here (with a warning when it is not "false").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from provisioner.gluster.parameter_values import (
    ParameterError,
    parse_cluster_ids,
    parse_rest_url,
    quote,
)
from provisioner.gluster.parameters import normalise_keys

__all__ = [
    "DEFAULT_FS_TYPE",
    "DEFAULT_HACOUNT",
    "BlockClassParameters",
    "parse_block_parameters",
]

DEFAULT_HACOUNT = 3
DEFAULT_FS_TYPE = "xfs"
"""What the retired provisioner wrote into every PV."""

_KNOWN_KEYS = (
    "resturl",
    "restuser",
    "restsecretnamespace",
    "restsecretname",
    "restauthenabled",
    "hacount",
    "chapauthenabled",
    "clusterids",
    "volumenameprefix",
    "fstype",
    "opmode",
    "blockmodeargs",
)
_NAME_PREFIX = re.compile(r"[a-zA-Z0-9-]+")
_FS_TYPE = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
_MAX_HACOUNT = 64


@dataclass(frozen=True)
class BlockClassParameters:
    rest_url: str
    rest_user: str = ""
    secret_namespace: str | None = None
    secret_name: str | None = None
    hacount: int = DEFAULT_HACOUNT
    chap: bool = True
    cluster_ids: tuple[str, ...] = ()
    volume_name_prefix: str | None = None
    fs_type: str = DEFAULT_FS_TYPE
    warnings: tuple[str, ...] = ()


def parse_block_parameters(params: Mapping[str, str]) -> BlockClassParameters:
    """Validate a glusterblock class; raise ``ParameterError`` naming the first bad key."""
    found = {
        lower: (key, value.strip())
        for lower, (key, value) in normalise_keys(params, _KNOWN_KEYS).items()
    }

    def get(lower: str) -> tuple[str, str | None]:
        name, value = found.get(lower, (lower, None))
        return name, value

    warnings: list[str] = []
    name, opmode = get("opmode")
    if opmode and opmode.lower() != "heketi":
        raise ParameterError(
            name, f'{quote(opmode)} is not supported: only "heketi" (the default) is served'
        )
    name, block_args = get("blockmodeargs")
    if block_args:
        raise ParameterError(name, 'is used only with opmode "gluster-block", which is not served')

    rest_url = parse_rest_url(*get("resturl"))
    name, auth = get("restauthenabled")
    auth_enabled = auth is None or auth.lower() == "true"
    if auth is not None:
        warnings.append(
            f'StorageClass parameter "{name}" is deprecated: authentication is implied by restuser'
        )
    _, rest_user = get("restuser")
    ns_name, secret_namespace = get("restsecretnamespace")
    sn_name, secret_name = get("restsecretname")
    secret_namespace, secret_name = secret_namespace or None, secret_name or None
    if auth_enabled and (secret_namespace is None) != (secret_name is None):
        missing = "restsecretname" if secret_name is None else "restsecretnamespace"
        present = sn_name if secret_name is not None else ns_name
        raise ParameterError(
            present,
            f"set both restsecretnamespace and restsecretname, or neither ({missing} is missing)",
        )
    if not auth_enabled:
        rest_user, secret_namespace, secret_name = "", None, None

    name, value = get("hacount")
    hacount = DEFAULT_HACOUNT
    if value:
        if not value.isdigit() or not 1 <= int(value) <= _MAX_HACOUNT:
            raise ParameterError(
                name, f"{quote(value)} must be a whole number from 1 to {_MAX_HACOUNT}"
            )
        hacount = int(value)

    name, value = get("chapauthenabled")
    chap = value is None or value == "" or value.lower() == "true"
    if value and value.lower() not in ("true", "false"):
        warnings.append(
            f'StorageClass parameter "{name}" is {quote(value)}, read as "false" '
            '(only "true" turns CHAP on)'
        )

    cluster_ids = parse_cluster_ids(*get("clusterids"), warnings)

    name, value = get("volumenameprefix")
    prefix = value or None
    if prefix is not None:
        if "_" in prefix:
            raise ParameterError(
                name, f"{quote(prefix)} must not contain '_' (it separates the parts of the name)"
            )
        if not _NAME_PREFIX.fullmatch(prefix):
            raise ParameterError(name, f"{quote(prefix)} may contain only letters, digits and '-'")

    name, value = get("fstype")
    fs_type = (value or DEFAULT_FS_TYPE).lower()
    if not _FS_TYPE.fullmatch(fs_type):
        raise ParameterError(
            name, f"{quote(value or '')} is not a file system type (e.g. xfs, ext4)"
        )

    return BlockClassParameters(
        rest_url=rest_url,
        rest_user=rest_user or "",
        secret_namespace=secret_namespace,
        secret_name=secret_name,
        hacount=hacount,
        chap=chap,
        cluster_ids=cluster_ids,
        volume_name_prefix=prefix,
        fs_type=fs_type,
        warnings=tuple(warnings),
    )

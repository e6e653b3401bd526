"""The Heketi key held in a ``kubernetes.io/glusterfs`` Secret.

Only ``data["key"]`` is read. The in-tree provisioner fell back to an arbitrary
entry when ``key`` was missing, which silently picked the wrong value; we fail and
list the entry names (never their values) so the operator can see the mistake.

``stringData`` is not consulted: it is write-only, and the API server merges it into
``data`` before anyone can read the Secret back.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

__all__ = ["SECRET_KEY_ENTRY", "SECRET_TYPE", "SecretError", "heketi_secret_body", "secret_key"]

SECRET_TYPE = "kubernetes.io/glusterfs"
SECRET_KEY_ENTRY = "key"


class SecretError(ValueError):
    """The Secret named by a StorageClass cannot supply a Heketi key."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def _describe(secret: Mapping[str, Any]) -> str:
    metadata = secret.get("metadata") or {}
    return f"{metadata.get('namespace', '?')}/{metadata.get('name', '?')}"


def secret_key(secret: Mapping[str, Any]) -> str:
    """Return the decoded Heketi key of a Secret (its JSON body)."""
    where = _describe(secret)
    kind = secret.get("type")
    if kind != SECRET_TYPE:
        if kind is None:
            found = "no type"
        elif isinstance(kind, str) and len(kind) <= 64:
            found = f'type "{kind}"'
        else:
            found = "an unreadable type"
        raise SecretError(f'Secret {where} has {found}; it must be of type "{SECRET_TYPE}"')
    data = secret.get("data") or {}
    if not isinstance(data, Mapping):
        raise SecretError(f"Secret {where} has malformed data")
    if SECRET_KEY_ENTRY not in data:
        names = ", ".join(sorted(f'"{name}"' for name in data)) or "none"
        raise SecretError(
            f'Secret {where} has no "{SECRET_KEY_ENTRY}" entry (entries present: {names})'
        )
    encoded = data[SECRET_KEY_ENTRY]
    if not isinstance(encoded, str):
        raise SecretError(f'Secret {where}: entry "{SECRET_KEY_ENTRY}" is not a string')
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(
            f'Secret {where}: entry "{SECRET_KEY_ENTRY}" is not valid base64'
        ) from None
    try:
        key = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError(
            f'Secret {where}: entry "{SECRET_KEY_ENTRY}" does not decode to UTF-8 text'
        ) from None
    if not key:
        raise SecretError(f'Secret {where}: entry "{SECRET_KEY_ENTRY}" is empty')
    return key


def heketi_secret_body(
    name: str,
    namespace: str,
    key: str,
    *,
    type_: str = SECRET_TYPE,
    entry: str = SECRET_KEY_ENTRY,
) -> dict[str, Any]:
    """The Secret ``secret_key`` reads, built in one place for the demo, the
    benchmarks and the tests (``type_``/``entry`` let tests build the wrong ones)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": type_,
        "data": {entry: base64.b64encode(key.encode()).decode()},
    }

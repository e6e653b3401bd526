"""Where the Heketi key comes from: a Secret, the deprecated class parameter, or memory.

Provision reads the Secret the StorageClass names (the Secret wins over
``restuserkey``); every problem with it is bad input, reported on the claim without
any Heketi call. Delete reads the Secret named on the PV; if it is gone, the key this
process last used for that server and issuer is the fallback, because a PV must stay
deletable after its Secret has been cleaned up by someone tidying a namespace.

The Secret is a ``kubernetes.io/glusterfs`` one, and only ``data["key"]`` is read.
The in-tree provisioner fell back to an arbitrary entry when ``key`` was missing,
which silently picked the wrong value; we fail and list the entry names (never their
values) so the operator can see the mistake. ``stringData`` is not consulted: it is
write-only, and the API server merges it into ``data`` before anyone can read the
Secret back.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any, Protocol

from provisioner.controller.contract import InvalidInput, ProvisionError
from provisioner.gluster.parameters import GlusterClassParameters
from provisioner.gluster.pool import HeketiPool, HeketiTarget
from provisioner.k8s.errors import KubeAPIError, KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI


class SecretKeys(Protocol):
    """Reads keys from Secrets, maybe from a cache (``secret_cache.SecretKeys``)."""

    def read(self, namespace: str, name: str, *, named_by: str) -> str: ...


__all__ = [
    "SECRET_KEY_ENTRY",
    "SECRET_TYPE",
    "SecretError",
    "heketi_secret_body",
    "key_for_delete",
    "read_secret_key",
    "secret_key",
    "target_for_class",
]

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


def read_secret_key(kube: KubeAPI, namespace: str, name: str, *, named_by: str) -> str:
    """The key in Secret ``namespace/name``; ``named_by`` says who pointed at it."""
    try:
        secret = kube.get("secrets", name, namespace)
    except KubeNotFound:
        raise InvalidInput(
            f"Secret {namespace}/{name} named by {named_by} does not exist"
        ) from None
    except KubeAPIError as err:
        raise ProvisionError(f"cannot read Secret {namespace}/{name}: {err}") from None
    try:
        return secret_key(secret)
    except SecretError as err:
        raise InvalidInput(f"{err.message} (named by {named_by})") from None


def _read(
    kube: KubeAPI, secrets: SecretKeys | None, namespace: str, name: str, named_by: str
) -> str:
    if secrets is not None:
        return secrets.read(namespace, name, named_by=named_by)
    return read_secret_key(kube, namespace, name, named_by=named_by)


def target_for_class(
    kube: KubeAPI,
    params: GlusterClassParameters,
    *,
    class_name: str,
    secrets: SecretKeys | None = None,
) -> HeketiTarget:
    """Server, user and key of a class; with ``secrets``, the key may come from its
    short-lived cache (``secret_cache``)."""
    key = params.rest_user_key
    if params.secret_name is not None and params.secret_namespace is not None:
        key = _read(
            kube,
            secrets,
            params.secret_namespace,
            params.secret_name,
            f"StorageClass {class_name}",
        )
    return HeketiTarget(params.rest_url, params.rest_user, key)


def key_for_delete(
    kube: KubeAPI,
    pool: HeketiPool,
    *,
    url: str,
    user: str,
    secret_namespace: str | None,
    secret_name: str | None,
    fallback_key: str,
    named_by: str,
    secrets: SecretKeys | None = None,
) -> str:
    """The key to delete with; raises a retriable ``ProvisionError`` if there is none."""
    if not secret_name or not secret_namespace:
        return fallback_key
    try:
        return _read(kube, secrets, secret_namespace, secret_name, named_by)
    except InvalidInput as err:
        remembered = pool.remembered_key(url, user)
        if remembered is not None:
            return remembered
        # Retriable: the Secret may be restored; the PV keeps its finalizer meanwhile.
        raise ProvisionError(
            f"{err.message}; cannot authenticate to Heketi at {url} to delete the volume "
            "(restore the Secret)"
        ) from None

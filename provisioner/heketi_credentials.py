"""Where the Heketi key comes from: a Secret, the deprecated class parameter, or memory.

Provision reads the Secret the StorageClass names (the Secret wins over
``restuserkey``); every problem with it is bad input, reported on the claim without
any Heketi call. Delete reads the Secret named on the PV; if it is gone, the key this
process last used for that server and issuer is the fallback, because a PV must stay
deletable after its Secret has been cleaned up by someone tidying a namespace.
"""

from __future__ import annotations

from provisioner.classes import GlusterClassParameters
from provisioner.heketi_pool import HeketiPool, HeketiTarget
from provisioner.kubeapi import KubeAPI, KubeAPIError, KubeNotFound
from provisioner.protocol import InvalidInput, ProvisionError
from provisioner.secrets import SecretError, secret_key

__all__ = ["key_for_delete", "read_secret_key", "target_for_class"]


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


def target_for_class(
    kube: KubeAPI, params: GlusterClassParameters, *, class_name: str
) -> HeketiTarget:
    key = params.rest_user_key
    if params.secret_name is not None and params.secret_namespace is not None:
        key = read_secret_key(
            kube,
            params.secret_namespace,
            params.secret_name,
            named_by=f"StorageClass {class_name}",
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
) -> str:
    """The key to delete with; raises a retriable ``ProvisionError`` if there is none."""
    if not secret_name or not secret_namespace:
        return fallback_key
    try:
        return read_secret_key(kube, secret_namespace, secret_name, named_by=named_by)
    except InvalidInput as err:
        remembered = pool.remembered_key(url, user)
        if remembered is not None:
            return remembered
        # Retriable: the Secret may be restored; the PV keeps its finalizer meanwhile.
        raise ProvisionError(
            f"{err.message}; cannot authenticate to Heketi at {url} to delete the volume "
            "(restore the Secret)"
        ) from None

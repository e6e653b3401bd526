"""The Heketi key of a glusterblock class: ``restsecretnamespace``/``restsecretname``.

The retired provisioner wanted the Secret's type to be its own provisioner name
(``gluster.org/glusterblock``) and read ``data["key"]``; a ``kubernetes.io/glusterfs``
Secret (what our file classes use) is accepted as well, so that one Secret can serve
both. Everything else about reading it is the file classes' (``credentials``): the
same checks, the same messages, never the value.
"""

from __future__ import annotations

from typing import Any

from provisioner.controller.contract import InvalidInput, ProvisionError
from provisioner.gluster.credentials import SECRET_TYPE, SecretError, secret_key
from provisioner.gluster.pool import HeketiPool
from provisioner.k8s.errors import KubeAPIError, KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI

__all__ = ["block_key", "block_key_for_delete"]


def block_key(
    kube: KubeAPI, namespace: str, name: str, *, provisioner_name: str, named_by: str
) -> str:
    try:
        secret: dict[str, Any] = kube.get("secrets", name, namespace)
    except KubeNotFound:
        raise InvalidInput(
            f"Secret {namespace}/{name} named by {named_by} does not exist"
        ) from None
    except KubeAPIError as err:
        raise ProvisionError(f"cannot read Secret {namespace}/{name}: {err}") from None
    if secret.get("type") == provisioner_name:
        secret = {**secret, "type": SECRET_TYPE}
    try:
        return secret_key(secret)
    except SecretError as err:
        message = err.message.replace(
            f'it must be of type "{SECRET_TYPE}"',
            f'it must be of type "{provisioner_name}" or "{SECRET_TYPE}"',
        )
        raise InvalidInput(f"{message} (named by {named_by})") from None


def block_key_for_delete(
    kube: KubeAPI,
    pool: HeketiPool,
    *,
    url: str,
    user: str,
    namespace: str | None,
    name: str | None,
    provisioner_name: str,
    named_by: str,
) -> str:
    """As for file PVs: the Secret on the PV, else the key last used for that server."""
    if not namespace or not name:
        return ""
    try:
        return block_key(
            kube, namespace, name, provisioner_name=provisioner_name, named_by=named_by
        )
    except InvalidInput as err:
        remembered = pool.remembered_key(url, user)
        if remembered is not None:
            return remembered
        raise ProvisionError(
            f"{err.message}; cannot authenticate to Heketi at {url} to delete the block "
            "volume (restore the Secret)"
        ) from None

"""The CHAP Secret of a block volume's PV: in the claim's namespace, output only.

An iSCSI PV with CHAP names a Secret that the kubelet reads from the claim's
namespace, so it must be written there, where the tenant writes too. It is made from
Heketi's answer and never read for anything but whether it is exactly ours: one a
tenant made under that name is replaced (with a uid precondition, so that only the
object looked at is removed), and one that does not carry our label for the claim is
never deleted.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import structlog

from heketi_client import BlockVolumeInfo
from provisioner.controller.contract import ProvisionError
from provisioner.gluster.block.objects import LABEL_CHAP_FOR_CLAIM, build_chap_secret
from provisioner.k8s.errors import KubeAlreadyExists, KubeAPIError, KubeConflict, KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI

__all__ = ["delete_chap_secret", "ensure_chap_secret"]

log = structlog.get_logger(__name__)

Obj = dict[str, Any]


def ensure_chap_secret(kube: KubeAPI, claim: Obj, volume: BlockVolumeInfo) -> None:
    """Create the claim's CHAP Secret from Heketi's answer.

    One already there under that name is never read for anything but whether it
    is exactly ours: if not (a tenant made or changed it), it is replaced, with a
    uid precondition so that only the object looked at is removed.
    """
    body = build_chap_secret(claim, volume)
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    where = f"CHAP Secret {namespace}/{name}"
    for _ in range(3):
        try:
            kube.create("secrets", body, namespace)
            return
        except KubeAlreadyExists:
            pass
        except KubeAPIError as err:
            raise ProvisionError(f"creating the {where} failed: {err.message}") from None
        try:
            current = kube.get("secrets", name, namespace)
        except KubeNotFound:
            continue
        except KubeAPIError as err:
            raise ProvisionError(f"reading the {where} failed: {err.message}") from None
        if _same_secret(current, body):
            return
        log.warning("chap_secret.replaced", namespace=namespace, secret=name)
        try:
            kube.delete("secrets", name, namespace, uid=(current.get("metadata") or {}).get("uid"))
        except (KubeNotFound, KubeConflict):
            continue
        except KubeAPIError as err:
            raise ProvisionError(f"replacing the {where} failed: {err.message}") from None
    raise ProvisionError(f"the {where} keeps changing under us; will retry")


def delete_chap_secret(kube: KubeAPI, namespace: str, name: str, claim_uid: str) -> None:
    """Delete the CHAP Secret if it is the one made for ``claim_uid``; a Secret of
    that name that a tenant made is theirs and stays."""
    try:
        current = kube.get("secrets", name, namespace)
    except KubeNotFound:
        return
    except KubeAPIError as err:
        raise ProvisionError(f"reading CHAP Secret {namespace}/{name} failed: {err}") from None
    labels = (current.get("metadata") or {}).get("labels") or {}
    if not claim_uid or labels.get(LABEL_CHAP_FOR_CLAIM) != claim_uid:
        log.warning("chap_secret.not_ours", namespace=namespace, secret=name)
        return
    with suppress(KubeNotFound, KubeConflict):
        try:
            kube.delete("secrets", name, namespace, uid=(current.get("metadata") or {}).get("uid"))
        except (KubeNotFound, KubeConflict):
            raise
        except KubeAPIError as err:
            raise ProvisionError(f"deleting CHAP Secret {namespace}/{name} failed: {err}") from None


def _same_secret(current: Obj, wanted: Obj) -> bool:
    labels = (current.get("metadata") or {}).get("labels") or {}
    return (
        current.get("type") == wanted["type"]
        and (current.get("data") or {}) == wanted["data"]
        and labels.get(LABEL_CHAP_FOR_CLAIM) == wanted["metadata"]["labels"][LABEL_CHAP_FOR_CLAIM]
    )

"""The endpoints of a PV: the Endpoints + Service pair that tells the kubelet where a
Gluster volume lives.

A ``glusterfs`` PV source names an Endpoints object; the selector-less Service of
the same name keeps Kubernetes from garbage-collecting it. The two are written,
checked and deleted together, and called *the endpoints* throughout this package.
Every step here is safe to repeat, because a provision attempt can fail between any
two of them:

* create, and on AlreadyExists compare the addresses: the same → done; different
  (Gluster nodes replaced since an earlier attempt) → replace;
* delete only objects that are ours: they carry our label, or their name ends with
  the claim uid (the in-tree provisioner's naming, label or not), so a user's
  object that happens to share a name is never removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from provisioner.gluster.annotations import LABEL_PROVISIONED_FOR_PVC
from provisioner.gluster.objects import build_endpoints, build_service
from provisioner.k8s.errors import KubeAlreadyExists, KubeConflict, KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI

__all__ = ["KINDS", "delete_endpoints", "ensure_endpoints", "missing_endpoints"]

KINDS = ("endpoints", "services")


def _addresses(endpoints: dict[str, Any]) -> list[tuple[str, ...]]:
    """What matters for mounting: the IPs of each subset, order ignored."""
    return sorted(
        tuple(sorted(a.get("ip", "") for a in subset.get("addresses") or ()))
        for subset in endpoints.get("subsets") or ()
    )


def ensure_endpoints(
    kube: KubeAPI,
    *,
    namespace: str,
    name: str,
    claim_name: str,
    claim_uid: str,
    hosts: Sequence[str],
) -> None:
    """Create (or correct) the Endpoints and the Service for one claim."""
    identity = {"namespace": namespace, "claim_name": claim_name, "claim_uid": claim_uid}
    wanted = build_endpoints(name=name, hosts=hosts, **identity)
    try:
        kube.create("endpoints", wanted, namespace)
    except KubeAlreadyExists:
        _correct_endpoints(kube, wanted, namespace)
    service = build_service(name=name, **identity)
    # A selector-less Service has nothing that can be wrong for us: existing is fine.
    with suppress(KubeAlreadyExists):
        kube.create("services", service, namespace)


def _correct_endpoints(kube: KubeAPI, wanted: dict[str, Any], namespace: str) -> None:
    name = wanted["metadata"]["name"]
    for _ in range(3):  # a conflict means someone else wrote in between: look again
        try:
            existing = kube.get("endpoints", name, namespace)
        except KubeNotFound:
            try:
                kube.create("endpoints", wanted, namespace)
                return
            except KubeAlreadyExists:
                continue
        if _addresses(existing) == _addresses(wanted):
            return
        body = dict(wanted)
        body["metadata"] = {
            **wanted["metadata"],
            "resourceVersion": existing["metadata"].get("resourceVersion"),
        }
        try:
            kube.replace("endpoints", body, namespace)
            return
        except KubeConflict:
            continue
        except KubeNotFound:
            continue
    raise KubeConflict(409, "Conflict", f"endpoints {namespace}/{name} keep changing")


def missing_endpoints(kube: KubeAPI, *, namespace: str, name: str) -> list[str]:
    """Which of the pair (``endpoints``, ``services``) does not exist."""
    missing = []
    for kind in KINDS:
        try:
            kube.get(kind, name, namespace)
        except KubeNotFound:
            missing.append(kind)
    return missing


def delete_endpoints(kube: KubeAPI, *, namespace: str, name: str, claim_uid: str) -> None:
    """Delete the pair if it is ours; missing objects are fine."""
    for kind in KINDS:
        try:
            existing = kube.get(kind, name, namespace)
        except KubeNotFound:
            continue
        metadata = existing.get("metadata") or {}
        labels = metadata.get("labels") or {}
        ours = LABEL_PROVISIONED_FOR_PVC in labels or (bool(claim_uid) and name.endswith(claim_uid))
        if not ours:
            continue
        # NotFound: gone already. Conflict: replaced by another object of that name
        # since we looked (the uid precondition failed), which is not ours to delete.
        with suppress(KubeNotFound, KubeConflict):
            kube.delete(kind, name, namespace, uid=metadata.get("uid"))

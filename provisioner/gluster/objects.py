"""Pure builders for the objects we write (PV, Endpoints, Service), and their reverse.

The Endpoints and the Service of a claim share one name and together are *the
endpoints* of its PV (``glusterfs.endpoints`` names them; ``customepnameprefix``
begins the name).

Everything here is a function of its arguments, so every name and body is the same
on a retry: a second attempt after a crash produces exactly the objects the first
one may already have created. The PV shape follows the in-tree provisioner (see
COMPATIBILITY.md) plus our own annotations, which let delete work from the PV alone.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from provisioner.controller.contract import pv_name
from provisioner.controller.keys import ANN_PROVISIONED_BY, FINALIZER
from provisioner.controller.predicates import class_name_of
from provisioner.gluster import annotations as ann
from provisioner.gluster.gid import gid_from_pv
from provisioner.gluster.parameters import GlusterClassParameters

__all__ = [
    "GLUSTER_PORT",
    "DeleteInfo",
    "build_endpoints",
    "build_pv",
    "build_service",
    "claim_pv",
    "claim_volume_name",
    "delete_info",
    "endpoints_name",
    "endpoints_of",
    "heketi_volume_name",
    "pvc_label_value",
]

# The glusterfs mount never uses this port; Endpoints and Services just need one.
GLUSTER_PORT = 1
_NOT_HEKETI_NAME = re.compile(r"[^a-zA-Z0-9_-]")
_HEKETI_ID = re.compile(r"[0-9a-f]{32}")
_LABEL_VALUE_MAX = 63


def _metadata(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, Mapping) else {}


def _claim_uid(claim: Mapping[str, Any]) -> str:
    uid = _metadata(claim).get("uid")
    if not isinstance(uid, str) or not uid:
        # Every name derives from the uid; without one a retry could not find its work.
        raise ValueError("claim has no metadata.uid")
    return uid


def endpoints_name(prefix: str, claim_uid: str) -> str:
    """The name of a claim's endpoints (its Endpoints and its Service): ``<prefix>-<uid>``."""
    return f"{prefix}-{claim_uid}"


def heketi_volume_name(params: GlusterClassParameters, claim: Mapping[str, Any]) -> str:
    """The Heketi volume name for a claim; always matches ``^[a-zA-Z0-9_-]+$``.

    The in-tree provisioner added a random suffix, so a retry after a lost answer
    created a second volume; the claim uid makes the name stable instead.
    """
    return claim_volume_name(params.volume_name_prefix, claim)


def claim_volume_name(prefix: str | None, claim: Mapping[str, Any]) -> str:
    """``pvc-<uid>``, or ``<prefix>_<namespace>_<claim>_<uid>``: a Heketi name (file or
    block volume) that a retry derives again from the claim alone."""
    uid = _claim_uid(claim)
    if prefix is None:
        name = pv_name(uid)
    else:
        metadata = _metadata(claim)
        parts = (prefix, metadata.get("namespace"), metadata.get("name"), uid)
        name = "_".join(str(part or "") for part in parts)
    return _NOT_HEKETI_NAME.sub("-", name)


def pvc_label_value(claim_name: str, claim_uid: str = "") -> str:
    """The claim's name as a label value, or its uid when the name is 63 characters
    or longer, as in-tree did (label values hold at most 63): two long names that
    share their first 63 characters must not share a label. Without a uid (callers
    that have none) a long name is cut to fit."""
    if len(claim_name) < _LABEL_VALUE_MAX:
        return claim_name
    if claim_uid:
        return claim_uid
    return claim_name[:_LABEL_VALUE_MAX].rstrip("-.")


def _ip_key(ip: str) -> tuple[int, int, str]:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return (2, 0, ip)
    return (address.version // 6, int(address), ip)


def _endpoints_metadata(
    name: str, namespace: str, claim_name: str, claim_uid: str
) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "labels": {ann.LABEL_PROVISIONED_FOR_PVC: pvc_label_value(claim_name, claim_uid)},
    }


def _claim_identity(
    claim: Mapping[str, Any] | None,
    namespace: str | None,
    claim_name: str | None,
    claim_uid: str = "",
) -> tuple[str, str, str]:
    """Namespace, name and uid, from the claim or given directly (both call styles work)."""
    if claim is not None:
        metadata = _metadata(claim)
        namespace = namespace or metadata.get("namespace")
        claim_name = claim_name or metadata.get("name")
        claim_uid = claim_uid or str(metadata.get("uid") or "")
    if not namespace or not claim_name:
        raise ValueError("the claim's namespace and name are required")
    return namespace, claim_name, claim_uid


def build_endpoints(
    *,
    name: str,
    claim: Mapping[str, Any] | None = None,
    ips: Iterable[str] | None = None,
    namespace: str | None = None,
    claim_name: str | None = None,
    hosts: Iterable[str] | None = None,
    claim_uid: str = "",
) -> dict[str, Any]:
    """Endpoints listing the Gluster storage addresses (sorted, de-duplicated).

    Pass either ``claim`` or ``namespace`` + ``claim_name``; ``hosts`` is an alias of
    ``ips``. Sorting makes the body comparable with what is already stored.
    """
    namespace, claim_name, claim_uid = _claim_identity(claim, namespace, claim_name, claim_uid)
    addresses = sorted({ip for ip in (ips if ips is not None else hosts or ()) if ip}, key=_ip_key)
    if not addresses:
        raise ValueError("no Gluster storage addresses for the Endpoints")
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": _endpoints_metadata(name, namespace, claim_name, claim_uid),
        "subsets": [
            {
                "addresses": [{"ip": ip} for ip in addresses],
                "ports": [{"port": GLUSTER_PORT, "protocol": "TCP"}],
            }
        ],
    }


def build_service(
    *,
    name: str,
    claim: Mapping[str, Any] | None = None,
    namespace: str | None = None,
    claim_name: str | None = None,
    claim_uid: str = "",
) -> dict[str, Any]:
    """A selector-less Service: it keeps the same-named Endpoints from being collected."""
    namespace, claim_name, claim_uid = _claim_identity(claim, namespace, claim_name, claim_uid)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _endpoints_metadata(name, namespace, claim_name, claim_uid),
        "spec": {"ports": [{"port": GLUSTER_PORT, "protocol": "TCP", "targetPort": GLUSTER_PORT}]},
    }


def build_pv(
    *,
    claim: Mapping[str, Any],
    storage_class: Mapping[str, Any],
    params: GlusterClassParameters,
    provisioner_name: str,
    volume_id: str,
    volume_name: str,
    size_gib: int,
    gid: int,
    endpoints_name: str,
    resturl: str,
    secret_namespace: str | None,
    secret_name: str | None,
    rest_user: str | None,
    clone_of: str | None = None,
) -> dict[str, Any]:
    """The PV for a provisioned Heketi volume, bound in advance to its claim;
    ``clone_of``: the Heketi volume id a clone was made from."""
    metadata = _metadata(claim)
    namespace = metadata.get("namespace")
    annotations = {
        ann.ANN_GID: str(gid),
        ann.ANN_HEKETI_VOLUME_ID: volume_id,
        ann.ANN_GLUSTER_TYPE: ann.GLUSTER_TYPE_FILE,
        ann.ANN_CREATED_BY: ann.CREATED_BY_VALUE,
        ann.ANN_DESCRIPTION: ann.DESCRIPTION_VALUE,
        ANN_PROVISIONED_BY: provisioner_name,
        ann.ANN_RESTURL: resturl,
    }
    if not params.nfs:  # an NFS PV has no endpoints: nothing to repair or delete beside it
        annotations[ann.ANN_ENDPOINTS_NAME] = endpoints_name
    if params.auth_enabled and rest_user:
        annotations[ann.ANN_RESTUSER] = rest_user
    if clone_of:
        annotations[ann.ANN_CLONE_OF] = clone_of
    if secret_namespace and secret_name:
        annotations[ann.ANN_SECRET_NAMESPACE] = secret_namespace
        annotations[ann.ANN_SECRET_NAME] = secret_name
    if params.nfs:
        # NFS-Ganesha exports a Gluster volume at /<volume name>.
        source = {
            "nfs": {"server": params.nfs_server, "path": f"/{volume_name}", "readOnly": False}
        }
    else:
        source = {
            "glusterfs": {
                "endpoints": endpoints_name,
                "endpointsNamespace": namespace,
                "path": volume_name,
                "readOnly": False,
            }
        }
    return claim_pv(claim, storage_class, size_gib=size_gib, annotations=annotations, source=source)


def claim_pv(
    claim: Mapping[str, Any],
    storage_class: Mapping[str, Any],
    *,
    size_gib: int,
    annotations: dict[str, str],
    source: dict[str, Any],
    volume_mode: str = "Filesystem",
) -> dict[str, Any]:
    """The PV shape every kind of ours shares (glusterfs, NFS, iSCSI): pre-bound to the
    claim by uid, the class's reclaim policy and mount options, our finalizer; only
    ``source`` (one ``spec`` key) differs between them."""
    metadata = _metadata(claim)
    uid = _claim_uid(claim)
    spec: dict[str, Any] = {
        "capacity": {"storage": f"{size_gib}Gi"},
        "accessModes": list((claim.get("spec") or {}).get("accessModes") or []),
        "volumeMode": volume_mode,
        "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
        "storageClassName": _metadata(storage_class).get("name"),
        "claimRef": {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "namespace": metadata.get("namespace"),
            "name": metadata.get("name"),
            "uid": uid,
        },
        **source,
    }
    mount_options = storage_class.get("mountOptions")
    if mount_options:
        spec["mountOptions"] = list(mount_options)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": pv_name(uid),
            "annotations": annotations,
            "finalizers": [FINALIZER],
        },
        "spec": spec,
    }


@dataclass(frozen=True)
class DeleteInfo:
    """What deleting a PV's backing needs, as far as the PV itself tells.

    ``has_own_annotations`` is False for PVs the in-tree provisioner wrote: the
    caller must then take the Heketi URL and credentials from the StorageClass.
    """

    volume_id: str | None
    volume_name: str | None
    rest_url: str | None
    rest_user: str | None
    secret_namespace: str | None
    secret_name: str | None
    endpoints_name: str | None
    endpoints_namespace: str | None
    gid: int | None
    class_name: str | None
    claim_uid: str | None
    has_own_annotations: bool


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def delete_info(pv: Mapping[str, Any]) -> DeleteInfo:
    """Read a PV (ours or in-tree) for delete; missing or malformed fields become None."""
    annotations = _metadata(pv).get("annotations") or {}
    spec = pv.get("spec") or {}
    gluster = spec.get("glusterfs") or {}
    claim_ref = spec.get("claimRef") or {}
    path = _text(gluster.get("path"))
    nfs_path = _text((spec.get("nfs") or {}).get("path"))
    if path is None and nfs_path is not None:
        path = nfs_path.lstrip("/") or None

    volume_id = _text(annotations.get(ann.ANN_HEKETI_VOLUME_ID))
    if volume_id is None and path is not None and path.startswith("vol_"):
        volume_id = path[len("vol_") :]
    if volume_id is not None and not _HEKETI_ID.fullmatch(volume_id):
        # Heketi answers 404 for a malformed id, which delete would take as "gone".
        volume_id = None

    rest_url = _text(annotations.get(ann.ANN_RESTURL))
    return DeleteInfo(
        volume_id=volume_id,
        volume_name=path,
        rest_url=rest_url,
        rest_user=_text(annotations.get(ann.ANN_RESTUSER)),
        secret_namespace=_text(annotations.get(ann.ANN_SECRET_NAMESPACE)),
        secret_name=_text(annotations.get(ann.ANN_SECRET_NAME)),
        endpoints_name=_text(annotations.get(ann.ANN_ENDPOINTS_NAME))
        or _text(gluster.get("endpoints")),
        endpoints_namespace=_text(gluster.get("endpointsNamespace"))
        or _text(claim_ref.get("namespace")),
        gid=gid_from_pv(pv),
        class_name=class_name_of(pv),
        claim_uid=_text(claim_ref.get("uid")),
        has_own_annotations=rest_url is not None,
    )


def endpoints_of(pv: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) of the endpoints a glusterfs PV mounts through, if it names them."""
    spec = pv.get("spec") or {}
    source = spec.get("glusterfs") or {}
    name = (_metadata(pv).get("annotations") or {}).get(ann.ANN_ENDPOINTS_NAME) or source.get(
        "endpoints"
    )
    namespace = source.get("endpointsNamespace") or (spec.get("claimRef") or {}).get("namespace")
    if not name or not namespace:
        return None
    return namespace, name

"""Pure builders for what a block volume is written as: the iSCSI PV and its CHAP Secret.

Both are functions of the claim, the class and Heketi's answer, so a retry writes the
same bodies. The PV carries everything delete needs (the admin-written PV is the
authority, never the tenant's namespace): our ``heketi-provisioner.gluster.org/*``
keys, and the retired glusterblock provisioner's own keys, which ``block_delete_info``
also reads so that PVs it made can be deleted by us.

The CHAP Secret lives in the claim's namespace (the kubelet reads ``secretRef`` there
only) and so is tenant-writable: it is output. Its name derives from the claim uid,
its labels say whose it is, and nothing in it is ever read back to decide anything.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from heketi_client import BlockVolumeInfo
from provisioner.controller.keys import ANN_PROVISIONED_BY
from provisioner.gluster import annotations as ann
from provisioner.gluster.block.parameters import BlockClassParameters
from provisioner.gluster.objects import claim_pv

__all__ = [
    "ANN_BLOCK_VOLUME_ID",
    "ANN_BLOCK_VOLUME_NAME",
    "ANN_CHAP_SECRET_NAME",
    "CHAP_PASSWORD",
    "CHAP_SECRET_TYPE",
    "CHAP_USERNAME",
    "ISCSI_PORT",
    "LABEL_CHAP_FOR_CLAIM",
    "BlockDeleteInfo",
    "block_delete_info",
    "block_volume_id",
    "build_block_pv",
    "build_chap_secret",
    "chap_secret_name",
    "portal",
]

ISCSI_PORT = 3260
CHAP_SECRET_TYPE = "kubernetes.io/iscsi-chap"
CHAP_USERNAME = "node.session.auth.username"
CHAP_PASSWORD = "node.session.auth.password"
LABEL_CHAP_FOR_CLAIM = "heketi-provisioner.gluster.org/chap-for-claim"
"""On the CHAP Secret: the uid of the claim it was made for (a claim uid is a valid
label value)."""

ANN_BLOCK_VOLUME_ID = "heketi-provisioner.gluster.org/block-volume-id"
ANN_BLOCK_VOLUME_NAME = "heketi-provisioner.gluster.org/block-volume-name"
ANN_CHAP_SECRET_NAME = "heketi-provisioner.gluster.org/chap-secret-name"
ANN_CHAP_SECRET_NAMESPACE = "heketi-provisioner.gluster.org/chap-secret-namespace"

# Written by the retired gluster.org/glusterblock provisioner (and by us, so that
# tools made for it keep reading our PVs).
LEGACY_VOLUME_ID = "gluster.org/volume-id"
LEGACY_SHARE = "glusterBlockShare"
LEGACY_BLOCKSTRING = "Blockstring"
LEGACY_ACCESS_KEY = "AccessKey"
LEGACY_ACCESS_KEY_NS = "AccessKeyNs"
LEGACY_PREFIX = "blockvol_"
GLUSTER_TYPE_BLOCK = "block"
CREATED_BY_BLOCK = "heketi"
DESCRIPTION_BLOCK = "Gluster-external: Dynamically provisioned PV"

_HEKETI_ID = re.compile(r"[0-9a-f]{32}")


def chap_secret_name(claim_uid: str) -> str:
    """One per claim, found again from the uid alone."""
    return f"glusterblk-{claim_uid}-secret"


def portal(host: str) -> str:
    """``host:3260``; an IPv6 address in brackets, as open-iscsi expects."""
    try:
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{ISCSI_PORT}"
    except ValueError:
        pass
    return f"{host}:{ISCSI_PORT}"


def build_chap_secret(claim: Mapping[str, Any], volume: BlockVolumeInfo) -> dict[str, Any]:
    """The ``kubernetes.io/iscsi-chap`` Secret the PV's ``secretRef`` names."""
    meta = claim["metadata"]
    uid = str(meta["uid"])

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": chap_secret_name(uid),
            "namespace": meta["namespace"],
            "labels": {LABEL_CHAP_FOR_CLAIM: uid},
            "annotations": {ANN_BLOCK_VOLUME_ID: volume.id},
        },
        "type": CHAP_SECRET_TYPE,
        "data": {CHAP_USERNAME: b64(volume.username), CHAP_PASSWORD: b64(volume.password)},
    }


def build_block_pv(
    *,
    claim: Mapping[str, Any],
    storage_class: Mapping[str, Any],
    params: BlockClassParameters,
    provisioner_name: str,
    volume: BlockVolumeInfo,
    resturl: str,
    chap: bool,
) -> dict[str, Any]:
    """The iSCSI PV for a block volume, bound in advance to its claim."""
    meta = claim["metadata"]
    uid = str(meta["uid"])
    namespace = str(meta["namespace"])
    spec_in = claim.get("spec") or {}
    secret = chap_secret_name(uid) if chap else ""
    annotations = {
        ANN_PROVISIONED_BY: provisioner_name,
        ann.ANN_GLUSTER_TYPE: GLUSTER_TYPE_BLOCK,
        ann.ANN_CREATED_BY: CREATED_BY_BLOCK,
        ann.ANN_DESCRIPTION: DESCRIPTION_BLOCK,
        ann.ANN_RESTURL: resturl,
        ANN_BLOCK_VOLUME_ID: volume.id,
        ANN_BLOCK_VOLUME_NAME: volume.name,
        LEGACY_VOLUME_ID: volume.id,
        LEGACY_SHARE: volume.name,
    }
    if params.rest_user:
        annotations[ann.ANN_RESTUSER] = params.rest_user
    if params.secret_namespace and params.secret_name:
        annotations[ann.ANN_SECRET_NAMESPACE] = params.secret_namespace
        annotations[ann.ANN_SECRET_NAME] = params.secret_name
    if chap:
        annotations[ANN_CHAP_SECRET_NAME] = secret
        annotations[ANN_CHAP_SECRET_NAMESPACE] = namespace
    iscsi: dict[str, Any] = {
        "targetPortal": portal(volume.hosts[0]),
        "iqn": volume.iqn,
        "lun": volume.lun,
        "fsType": params.fs_type,
        "readOnly": False,
    }
    if len(volume.hosts) > 1:
        iscsi["portals"] = [portal(h) for h in volume.hosts[1:]]
    if chap:
        iscsi["chapAuthSession"] = True
        iscsi["secretRef"] = {"name": secret, "namespace": namespace}
    return claim_pv(
        claim,
        storage_class,
        size_gib=volume.size,
        annotations=annotations,
        source={"iscsi": iscsi},
        volume_mode=spec_in.get("volumeMode") or "Filesystem",
    )


@dataclass(frozen=True)
class BlockDeleteInfo:
    """What deleting a block PV needs, read from the PV alone (None: not there)."""

    volume_id: str | None
    rest_url: str | None
    rest_user: str | None
    secret_namespace: str | None
    secret_name: str | None
    chap_namespace: str | None
    chap_name: str | None
    claim_uid: str | None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _blockstring(value: str | None) -> dict[str, str]:
    """The retired provisioner's ``url:..,user:..,secret:..,secretnamespace:..``."""
    found: dict[str, str] = {}
    for part in (value or "").split(","):
        key, _, item = part.partition(":")
        if key in ("url", "user", "secret", "secretnamespace") and key not in found:
            found[key] = item if key != "url" else part[len("url:") :]
    return found


def block_volume_id(pv: Mapping[str, Any]) -> str | None:
    """The block volume a PV names (ours or the retired provisioner's), as delete
    reads it: for ``VolumeOwners``."""
    return block_delete_info(pv).volume_id


def block_delete_info(pv: Mapping[str, Any]) -> BlockDeleteInfo:
    annotations = (pv.get("metadata") or {}).get("annotations") or {}
    spec = pv.get("spec") or {}
    legacy = _blockstring(_text(annotations.get(LEGACY_BLOCKSTRING)))
    volume_id = _text(annotations.get(ANN_BLOCK_VOLUME_ID)) or _text(
        annotations.get(LEGACY_VOLUME_ID)
    )
    share = _text(annotations.get(LEGACY_SHARE))
    if volume_id is None and share and share.startswith(LEGACY_PREFIX):
        volume_id = share[len(LEGACY_PREFIX) :]
    if volume_id is not None and not _HEKETI_ID.fullmatch(volume_id):
        volume_id = None  # Heketi answers 404 for it, which delete would read as "gone"
    secret_ref = (spec.get("iscsi") or {}).get("secretRef") or {}
    chap_name = _text(annotations.get(ANN_CHAP_SECRET_NAME)) or _text(
        annotations.get(LEGACY_ACCESS_KEY)
    )
    chap_namespace = _text(annotations.get(ANN_CHAP_SECRET_NAMESPACE)) or _text(
        annotations.get(LEGACY_ACCESS_KEY_NS)
    )
    if chap_name is None and isinstance(secret_ref, Mapping):
        chap_name = _text(secret_ref.get("name"))
        chap_namespace = _text(secret_ref.get("namespace")) or _text(
            (spec.get("claimRef") or {}).get("namespace")
        )
    return BlockDeleteInfo(
        volume_id=volume_id,
        rest_url=_text(annotations.get(ann.ANN_RESTURL)) or _text(legacy.get("url")),
        rest_user=_text(annotations.get(ann.ANN_RESTUSER)) or _text(legacy.get("user")),
        secret_namespace=_text(annotations.get(ann.ANN_SECRET_NAMESPACE))
        or _text(legacy.get("secretnamespace")),
        secret_name=_text(annotations.get(ann.ANN_SECRET_NAME)) or _text(legacy.get("secret")),
        chap_namespace=chap_namespace,
        chap_name=chap_name,
        claim_uid=_text((spec.get("claimRef") or {}).get("uid")),
    )

"""The intent record: what provision is about to ask Heketi for, kept in our namespace.

Before the Heketi create, provision writes a ConfigMap ``heketi-intent-<claim uid>``
in the controller's own namespace saying which claim, class, Heketi server, volume
name and GID the create is for (never the key). From then on, whatever happens to
the process or the claim, something in *our* cluster records that a Heketi volume
may exist and which GID it holds:

* a successor rebuilds the GID allocator from PVs *and* these records, so a GID is
  never handed out twice, even for a create still running in Heketi (which Heketi's
  list would hide);
* the orphan sweep (``orphans``) starts from these records: a record whose claim is
  gone and whose PV was never written names the volume to reclaim. A Heketi volume
  with no record (another cluster's, an operator's) is never ours to delete.

Why the controller's namespace and not the claim's: everything in a claim's
namespace is written by its tenant. Earlier versions kept the record on the claim's
Service, and a tenant who copied that Service could make the sweep delete any Heketi
volume, send admin-signed tokens to a server of theirs, or pick another volume's GID.
Only cluster admins (and we) write the controller's namespace, so a record read
back from there is ours. Even so, the sweep re-derives the Heketi server, the
credentials and the volume name from the StorageClass and checks the record
against them (``orphans``): a record is a list of candidates, not an authority on
where the key goes.

Once the claim's PV exists the PV holds the GID and names the volume, so the record
has done its job; the sweep removes it then. That keeps the namespace small: records
exist only for claims in flight or abandoned mid-way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from provisioner.gluster.gid import parse_gid
from provisioner.k8s.errors import KubeAlreadyExists, KubeConflict, KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI

__all__ = [
    "LABEL_INTENT",
    "Intent",
    "IntentStore",
    "RecordConflict",
    "read_intent",
    "record_name",
]

LABEL_INTENT = "heketi-provisioner.gluster.org/intent"
"""Label on every record, so that listing them is one selector away."""

RECORD_PREFIX = "heketi-intent-"
_UID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class RecordConflict(Exception):
    """A record's name is taken by something that is not this claim's record."""


def record_name(claim_uid: str) -> str:
    """The record's object name: one per claim, found again from the uid alone."""
    return f"{RECORD_PREFIX}{claim_uid}"


@dataclass(frozen=True)
class Intent:
    """One claim's record. ``provisioner`` keeps controllers serving different names
    in one namespace from sweeping each other's records."""

    provisioner: str
    claim_namespace: str
    claim_name: str
    claim_uid: str
    class_name: str
    rest_url: str
    volume_name: str
    gid: int

    @property
    def name(self) -> str:
        return record_name(self.claim_uid)

    def data(self) -> dict[str, str]:
        """The ConfigMap ``data`` that holds this record."""
        return {
            "provisioner": self.provisioner,
            "claimNamespace": self.claim_namespace,
            "claimName": self.claim_name,
            "claimUID": self.claim_uid,
            "storageClass": self.class_name,
            "resturl": self.rest_url,
            "volumeName": self.volume_name,
            "gid": str(self.gid),
        }

    def body(self, namespace: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": namespace,
                "labels": {LABEL_INTENT: "v1"},
            },
            "data": self.data(),
        }


def _field(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value and value == value.strip() else None


def read_intent(record: Mapping[str, Any], *, gid_required: bool = True) -> Intent | None:
    """The record a ConfigMap holds, or None if it is not a well-formed record.

    Strict on purpose: a record that does not read back exactly as we write it was
    not written by us, and an unreadable one must never widen what the sweep does.
    ``gid_required=False`` reads the records of volumes that take no GID (block
    volumes), whose ``gid`` is "0".
    """
    metadata = record.get("metadata") or {}
    data = record.get("data") or {}
    if not isinstance(metadata, Mapping) or not isinstance(data, Mapping):
        return None
    uid = _field(data, "claimUID")
    namespace = _field(data, "claimNamespace")
    claim = _field(data, "claimName")
    provisioner = _field(data, "provisioner")
    url = _field(data, "resturl")
    volume = _field(data, "volumeName")
    class_name = _field(data, "storageClass")
    gid = parse_gid(data.get("gid"))
    if not (uid and namespace and claim and provisioner and url and volume and class_name):
        return None
    if (
        gid is None
        or gid < 0
        or (gid_required and gid == 0)
        or not _UID.match(uid)
        or metadata.get("name") != record_name(uid)
    ):
        return None
    if not _DNS_LABEL.match(namespace) or not _DNS_SUBDOMAIN.match(claim):
        return None
    return Intent(
        provisioner=provisioner,
        claim_namespace=namespace,
        claim_name=claim,
        claim_uid=uid,
        class_name=class_name,
        rest_url=url,
        volume_name=volume,
        gid=gid,
    )


class IntentStore:
    """The records of one provisioner name, in the controller's namespace."""

    def __init__(
        self, kube: KubeAPI, *, namespace: str, provisioner_name: str, gid_required: bool = True
    ) -> None:
        self.kube = kube
        self.namespace = namespace
        self.provisioner_name = provisioner_name
        self.gid_required = gid_required

    def write(self, intent: Intent) -> tuple[Intent, bool]:
        """Create the record; (what is recorded now, whether this call created it).

        When a record for the claim exists already, an earlier attempt (of this or
        an earlier process) wrote it: its GID is the claim's, and a volume may exist.
        A record there that does not read back as one for this claim (hand-edited,
        or another provisioner's) is an error, never silently replaced.
        """
        try:
            self.kube.create("configmaps", intent.body(self.namespace), self.namespace)
            return intent, True
        except KubeAlreadyExists:
            pass
        existing = read_intent(
            self.kube.get("configmaps", intent.name, self.namespace),
            gid_required=self.gid_required,
        )
        if (
            existing is None
            or existing.claim_uid != intent.claim_uid
            or existing.provisioner != intent.provisioner
        ):
            raise RecordConflict(
                f"ConfigMap {self.namespace}/{intent.name} exists but is not a readable "
                f"record of claim {intent.claim_uid} for provisioner {intent.provisioner}; "
                "remove it if nothing was provisioned for that claim"
            )
        return existing, False

    def list(self) -> list[Intent]:
        """Every readable record of this provisioner name (one API list)."""
        found = self.kube.list("configmaps", self.namespace, label_selector=LABEL_INTENT)
        records = (
            read_intent(item, gid_required=self.gid_required) for item in found.get("items") or ()
        )
        return [r for r in records if r is not None and r.provisioner == self.provisioner_name]

    def delete(self, intent: Intent) -> None:
        """Remove the record; gone already is fine."""
        self.discard(intent.claim_uid)

    def discard(self, claim_uid: str) -> None:
        """Remove the record of a claim uid if there is one (a PV's delete: the sweep
        may not have retired it yet, and left behind it would look like an orphan)."""
        if not _UID.match(claim_uid):
            return  # no record can have that name
        with suppress(KubeNotFound, KubeConflict):
            self.kube.delete("configmaps", record_name(claim_uid), self.namespace)

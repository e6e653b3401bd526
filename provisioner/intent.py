"""The intent record: what provision is about to ask Heketi for, kept in our API server.

Before the Heketi create, provision writes the claim's Service
``<customepnameprefix>-<claim uid>`` (which it needs anyway) with annotations saying
which claim, class, Heketi server, volume name and GID the create is for, and how to
authenticate (the Secret reference and issuer, never the key). From then on, whatever
happens to the process or the claim, something in *our* cluster records that a
Heketi volume may exist and which GID it holds:

* a successor rebuilds the GID allocator from PVs *and* these records, so a GID is
  never handed out twice, even for a create still running in Heketi (which Heketi's
  list would hide);
* the orphan sweep (``orphans``) starts from these records: a record whose claim is
  gone and whose PV was never written names exactly the volume to reclaim, on the
  server to reclaim it from. A Heketi volume with no record here (another cluster's,
  an operator's) is never ours to delete.

A Service written by an earlier version or by the in-tree provisioner has no record:
``read_intent`` answers None, which callers treat as "intent unknown".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisioner import annotations as ann

__all__ = ["INTENT_KEYS", "Intent", "intent_metadata", "read_intent"]

INTENT_KEYS = (
    ann.ANN_INTENT_CLAIM_UID,
    ann.ANN_INTENT_CLAIM_NAME,
    ann.ANN_INTENT_STORAGE_CLASS,
    ann.ANN_INTENT_VOLUME_NAME,
    ann.ANN_INTENT_GID,
    ann.ANN_RESTURL,
    ann.ANN_RESTUSER,
    ann.ANN_SECRET_NAMESPACE,
    ann.ANN_SECRET_NAME,
)

# What the Service cache keeps of each object: enough to say "exists" and to read the
# record, not the whole body.
_IDENTITY = ("name", "namespace", "uid", "resourceVersion", "labels", "deletionTimestamp")


@dataclass(frozen=True)
class Intent:
    """One claim's record; ``service`` and ``namespace`` locate the Service itself."""

    namespace: str
    service: str
    claim_uid: str
    claim_name: str
    class_name: str
    rest_url: str
    volume_name: str
    gid: int
    rest_user: str = ""
    secret_namespace: str | None = None
    secret_name: str | None = None

    def annotations(self) -> dict[str, str]:
        """The Service annotations that hold this record."""
        found = {
            ann.ANN_INTENT_CLAIM_UID: self.claim_uid,
            ann.ANN_INTENT_CLAIM_NAME: self.claim_name,
            ann.ANN_INTENT_STORAGE_CLASS: self.class_name,
            ann.ANN_INTENT_VOLUME_NAME: self.volume_name,
            ann.ANN_INTENT_GID: str(self.gid),
            ann.ANN_RESTURL: self.rest_url,
        }
        if self.rest_user:
            found[ann.ANN_RESTUSER] = self.rest_user
        if self.secret_namespace and self.secret_name:
            found[ann.ANN_SECRET_NAMESPACE] = self.secret_namespace
            found[ann.ANN_SECRET_NAME] = self.secret_name
        return found


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def read_intent(service: Mapping[str, Any]) -> Intent | None:
    """The record on a Service, or None if it has none (or an unreadable one)."""
    metadata = service.get("metadata") or {}
    found = metadata.get("annotations") or {}
    uid = _text(found.get(ann.ANN_INTENT_CLAIM_UID))
    name = _text(metadata.get("name"))
    namespace = _text(metadata.get("namespace"))
    url = _text(found.get(ann.ANN_RESTURL))
    volume = _text(found.get(ann.ANN_INTENT_VOLUME_NAME))
    try:
        gid = int(str(found.get(ann.ANN_INTENT_GID, "")).strip())
    except ValueError:
        return None
    if not (uid and name and namespace and url and volume) or gid <= 0:
        return None
    if not name.endswith(uid):
        return None  # copied onto another object: it does not describe this one
    return Intent(
        namespace=namespace,
        service=name,
        claim_uid=uid,
        claim_name=_text(found.get(ann.ANN_INTENT_CLAIM_NAME)) or "",
        class_name=_text(found.get(ann.ANN_INTENT_STORAGE_CLASS)) or "",
        rest_url=url,
        volume_name=volume,
        gid=gid,
        rest_user=_text(found.get(ann.ANN_RESTUSER)) or "",
        secret_namespace=_text(found.get(ann.ANN_SECRET_NAMESPACE)),
        secret_name=_text(found.get(ann.ANN_SECRET_NAME)),
    )


def intent_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Informer transform for Services: identity plus the intent annotations only."""
    meta = obj.get("metadata") or {}
    kept = {k: meta[k] for k in _IDENTITY if k in meta}
    found = {k: v for k, v in (meta.get("annotations") or {}).items() if k in INTENT_KEYS}
    if found:
        kept["annotations"] = found
    return {"metadata": kept}

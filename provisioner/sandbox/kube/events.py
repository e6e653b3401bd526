"""Conversion between core/v1 Event and events.k8s.io/v1 Event.

Both groups share one store (as on a real cluster, where they are two views of the
same etcd objects); objects are kept in the core/v1 shape and converted on the way in
and out of events.k8s.io/v1.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

# (events.k8s.io/v1 field, core/v1 field) pairs that are plain renames.
_RENAMES = (
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("deprecatedSource", "source"),
)
_SHARED = (
    "metadata",
    "eventTime",
    "series",
    "related",
    "action",
    "reason",
    "type",
    "reportingInstance",
)


def to_core(obj: Obj) -> Obj:
    out: Obj = {k: obj[k] for k in _SHARED if k in obj}
    for new, old in _RENAMES:
        if new in obj:
            out[old] = obj[new]
    out["kind"] = "Event"
    out["apiVersion"] = "v1"
    return out


def from_core(obj: Obj) -> Obj:
    out: Obj = {"kind": "Event", "apiVersion": "events.k8s.io/v1"}
    out.update({k: obj[k] for k in _SHARED if k in obj})
    for new, old in _RENAMES:
        if old in obj:
            out[new] = obj[old]
    for empty in ("reportingController", "reportingInstance"):  # omitempty in this group
        if out.get(empty) == "":
            del out[empty]
    # Old-style events have no eventTime, which events.k8s.io/v1 requires (the official
    # Python client refuses to decode such an event): derive one from the timestamps.
    if not out.get("eventTime"):
        stamp = (
            obj.get("firstTimestamp")
            or obj.get("lastTimestamp")
            or (obj.get("metadata") or {}).get("creationTimestamp")
            or "1970-01-01T00:00:00Z"
        )
        out["eventTime"] = stamp.replace("Z", ".000000Z") if "." not in stamp else stamp
    return out

"""The Lease object of leader election: its name, its holder identity, its body.

Kept apart from the election loop (``leader``) because these are plain functions of
their arguments: the Lease a replica writes is the one client-go would write, so
``kubectl get lease`` and other tooling read it the same way.
"""

from __future__ import annotations

import re
import socket
import uuid
from datetime import datetime, timezone
from typing import Any

__all__ = ["RESOURCE", "holder_identity", "lease_body", "lease_name", "lease_spec", "micro_time"]

RESOURCE = "leases"
_NOT_IN_NAME = re.compile(r"[^a-z0-9.-]+")

KubeObject = dict[str, Any]


def micro_time(moment: datetime | None = None) -> str:
    """A Kubernetes ``MicroTime``: ``2026-11-21T23:40:00.000000Z`` (UTC, microseconds)."""
    moment = (moment or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_name(provisioner_name: str) -> str:
    """The Lease name for a provisioner name, as the Go external-provisioner library
    derives it (``gluster.org/heketi`` -> ``gluster.org-heketi``), so that replicas
    serving one name share one Lease and different names never do."""
    name = _NOT_IN_NAME.sub("-", provisioner_name.lower()).strip("-.")
    if not name:
        raise ValueError(f"no Lease name can be made from {provisioner_name!r}")
    return name[:253]


def holder_identity(pod_name: str | None = None) -> str:
    """``<pod or host>_<random>``: readable in ``kubectl get lease``, and unique even
    when a restarted pod keeps its name (a restart must not inherit the old term)."""
    return f"{pod_name or socket.gethostname()}_{uuid.uuid4()}"


def lease_spec(lease: KubeObject | None) -> dict[str, Any]:
    """A copy of the Lease's ``spec`` (empty for no Lease)."""
    return dict((lease or {}).get("spec") or {})


def lease_body(
    lease: KubeObject | None,
    *,
    name: str,
    namespace: str,
    holder: str,
    acquired: bool,
    duration_seconds: int,
) -> KubeObject:
    """The Lease to write: ``lease`` (its metadata kept) with a new spec naming ``holder``.

    ``acquired``: the holder changes with this write (a released lease too), which
    counts a transition, as client-go counts them, and sets ``acquireTime``.
    """
    now = micro_time()
    spec = lease_spec(lease)
    transitions = int(spec.get("leaseTransitions") or 0)
    if acquired and lease is not None:
        transitions += 1
    spec.update(
        holderIdentity=holder,
        leaseDurationSeconds=duration_seconds,
        renewTime=now,
        leaseTransitions=transitions,
    )
    if acquired or not spec.get("acquireTime"):
        spec["acquireTime"] = now
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if lease is not None:
        old = lease.get("metadata") or {}
        for key in ("resourceVersion", "uid", "labels", "annotations"):
            if old.get(key) is not None:
                metadata[key] = old[key]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": spec,
    }

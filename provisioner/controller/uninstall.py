"""``heketi-provisioner uninstall``: take our finalizer off every PV we provisioned.

The finalizer keeps a PV until its backend volume is gone; with the controller
removed nothing would ever take it off, and every such PV deleted afterwards would
hang in Terminating. Removing it is safe only when no delete is under way, so this
refuses while:

* the controller still holds its Lease (it may be deleting right now: stop it first);
* a PV of ours is mid-delete: being deleted already, or Released/Failed under
  ``reclaimPolicy: Delete`` (the controller would delete its volume next). Removing
  the finalizer there would let the PV go and leave its volume behind; ``--force``
  does exactly that, on purpose.

The PVs themselves and their volumes stay: only the finalizer goes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from provisioner.controller.keys import FINALIZER
from provisioner.controller.predicates import provisioned_by
from provisioner.controller.volume_sync import remove_finalizer
from provisioner.k8s.errors import KubeAPIError, KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI
from provisioner.k8s.leases import RESOURCE, lease_name, lease_spec

__all__ = ["uninstall"]

Obj = dict[str, Any]


def _mid_delete(pv: Obj) -> str | None:
    """Why removing the finalizer now would leak the PV's volume (None: it would not)."""
    if (pv.get("metadata") or {}).get("deletionTimestamp"):
        return "is being deleted"
    phase = (pv.get("status") or {}).get("phase")
    reclaim = (pv.get("spec") or {}).get("persistentVolumeReclaimPolicy") or "Delete"
    if phase in ("Released", "Failed") and reclaim == "Delete":
        return f"is {phase} under reclaimPolicy Delete (its Heketi volume is deleted next)"
    return None


def _lease_holder(kube: KubeAPI, namespace: str, provisioner_name: str) -> str | None:
    """Who holds the controller's Lease, if anyone does and it has not expired."""
    try:
        lease = kube.get(RESOURCE, lease_name(provisioner_name), namespace)
    except KubeNotFound:
        return None
    spec = lease_spec(lease)
    holder = spec.get("holderIdentity")
    if not holder:
        return None
    renewed = str(spec.get("renewTime") or "")
    duration = float(spec.get("leaseDurationSeconds") or 0)
    try:
        at = datetime.strptime(renewed, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return str(holder)  # unreadable: assume it is held
    age = (datetime.now(timezone.utc) - at).total_seconds()
    return str(holder) if age < duration else None


def uninstall(
    kube: KubeAPI,
    *,
    provisioner_name: str,
    namespace: str,
    block_provisioner_name: str = "",
    force: bool = False,
    dry_run: bool = False,
    say: Callable[[str], None] = print,
) -> int:
    """0: done (or nothing to do); 1: refused, nothing changed; 2: could not finish.

    One process serves both names (the Lease is the file name's), so PVs of either
    name are released together: leaving the block ones would hang them in Terminating.
    """
    names = {provisioner_name} | ({block_provisioner_name} if block_provisioner_name else set())
    try:
        holder = _lease_holder(kube, namespace, provisioner_name)
        pvs = kube.list("persistentvolumes").get("items") or []
    except KubeAPIError as err:
        say(f"cannot read the cluster: {err}")
        return 2
    if holder is not None and not force:
        say(
            f"the controller still runs (Lease {namespace}/{lease_name(provisioner_name)} "
            f"held by {holder}): stop it first, e.g. scale its Deployment to 0"
        )
        return 1
    ours = [
        pv
        for pv in pvs
        if any(provisioned_by(pv, name) for name in names)
        and FINALIZER in ((pv.get("metadata") or {}).get("finalizers") or ())
    ]
    busy = [(pv["metadata"]["name"], why) for pv in ours if (why := _mid_delete(pv))]
    if busy and not force:
        for name, why in busy:
            say(f"PV {name} {why}")
        say(
            f"{len(busy)} PV(s) are mid-delete: start the controller again and let it finish, "
            "or pass --force to leave their Heketi volumes behind"
        )
        return 1
    if dry_run:
        for pv in ours:
            say(f"would remove the finalizer of PV {pv['metadata']['name']}")
        say(f"{len(ours)} PV(s) would be released")
        return 0
    failed = 0
    for pv in ours:
        try:
            remove_finalizer(kube, pv)
        except KubeAPIError as err:
            failed += 1
            say(f"PV {pv['metadata']['name']}: {err}")
    say(f"removed our finalizer from {len(ours) - failed} of {len(ours)} PV(s)")
    return 2 if failed else 0

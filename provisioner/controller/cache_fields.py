"""What the informer caches keep of each kind: the one place that says so.

Every field a reader takes from a *cached* claim, PV, StorageClass or watched
object must be listed here, with who reads it; a reader asking a declared level
for a field that is not listed gets ``DroppedField`` (``k8s.slimming``), so a new
reader fails loudly in the tests instead of seeing "absent".  ``"*"`` keeps every
other key of its level.

Where unsure, whole subtrees stay: the claim's ``spec`` and ``status`` (issue 16
reads requests, capacity, conditions, dataSource, dataSourceRef), the PV's
``spec`` (the sources: glusterfs, and iscsi / nfs from issue 17), StorageClasses
whole (few of them, and their parameters are every backend's input).  What is
dropped is what nobody reads and what costs most at 50,000 objects:
``managedFields``, ``ownerReferences``, ``generateName``, the PV's status times.

Writes never start from these copies: ``remove_finalizer`` patches only
``finalizers`` with the cached ``resourceVersion`` as precondition; every other
update reads the object first (``kube.get``).
"""

from __future__ import annotations

from provisioner.k8s.slimming import COMMON, SHARED, UNIQUE, Fields

__all__ = ["CLAIM", "PV", "STORAGE_CLASS", "WATCHED"]

_IDENTITY = {
    # object_key (informer), event involvedObject, log context, claimRef match
    "name": UNIQUE,
    "namespace": SHARED,
    "uid": UNIQUE,
    # informer relist diff, the finalizer patch's precondition, events
    "resourceVersion": UNIQUE,
    # predicates: a claim or PV being deleted is left alone
    "deletionTimestamp": UNIQUE,
}

CLAIM = Fields(
    "claim",
    {
        # events.record: involvedObject kind / apiVersion (watch events carry them)
        "apiVersion": SHARED,
        "kind": SHARED,
        "metadata": Fields(
            "claim.metadata",
            {
                **_IDENTITY,
                # predicates: storage-provisioner / beta class / selected-node
                # annotations; gluster.objects: the in-tree annotations copied.
                # Bound claims of one provisioner all carry the same ones.
                "annotations": COMMON,
                # gluster.objects (uid label), selectors in tests
                "labels": COMMON,
                # bind_latency: create -> Bound histogram
                "creationTimestamp": UNIQUE,
                # uninstall / tests
                "finalizers": COMMON,
            },
        ),
        # predicates, claim_sync fingerprint, gluster.claims; resize
        # (predicates.resize_step, resize_sync): spec.volumeName,
        # spec.resources.requests.storage; cloning (clone_source): spec.dataSource,
        # spec.dataSourceRef and, of the source claim, spec.volumeName (whole spec)
        "spec": Fields(
            "claim.spec",
            {"volumeName": UNIQUE, "accessModes": COMMON, "resources": COMMON, "*": SHARED},
        ),
        # resize: status.phase, capacity, conditions[].type,
        # allocatedResourceStatuses; clone_source: the source's phase; bind_latency:
        # phase. Whole, and the same in every bound claim of one size.
        "status": COMMON,
    },
)

PV = Fields(
    "pv",
    {
        "apiVersion": SHARED,
        "kind": SHARED,
        "metadata": Fields(
            "pv.metadata",
            {
                **_IDENTITY,
                # predicates (provisioned-by), gluster.objects.delete_info (Heketi id,
                # URL, secret reference, GID), endpoints_of
                "annotations": SHARED,
                "labels": SHARED,
                # volume_sync: our finalizer, the PV controller's
                "finalizers": COMMON,
            },
        ),
        # predicates (reclaim policy, claimRef), gluster delete/repair (glusterfs),
        # issue 16 (capacity), issue 17 (iscsi, nfs): every source stays whole.
        "spec": Fields(
            "pv.spec",
            {
                "claimRef": Fields(
                    "pv.spec.claimRef",
                    {"name": UNIQUE, "uid": UNIQUE, "resourceVersion": UNIQUE, "*": SHARED},
                ),
                "glusterfs": Fields(
                    "pv.spec.glusterfs", {"endpoints": UNIQUE, "path": UNIQUE, "*": SHARED}
                ),
                "accessModes": COMMON,
                "capacity": COMMON,
                "mountOptions": COMMON,
                "*": SHARED,
            },
        ),
        # predicates: phase (Released / Failed / Bound); events' reason and message
        # are not read; lastPhaseTransitionTime (1.29+) is dropped
        "status": Fields(
            "pv.status", {"phase": SHARED, "reason": SHARED, "message": UNIQUE}, common=True
        ),
    },
)

STORAGE_CLASS = Fields("storageclass", {"*": SHARED})
"""Whole (managedFields aside): few objects, and every parameter is backend input."""

WATCHED = Fields(
    "watched",
    {
        # WatchedObjects.all_present and the delete handler ask only "is it there",
        # by namespace/name (object_key); nothing else is read, not even
        # resourceVersion (these informers have no update handler).
        "metadata": Fields("watched.metadata", {"name": UNIQUE, "namespace": SHARED}),
    },
)

"""Which claims and volumes the controller acts on, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.controller.keys import (
    ANN_BETA_STORAGE_CLASS,
    ANN_BETA_STORAGE_PROVISIONER,
    ANN_PROVISIONED_BY,
    ANN_SELECTED_NODE,
    ANN_STORAGE_PROVISIONER,
    FINALIZER,
)
from provisioner.controller.predicates import (
    ClaimVerdict,
    VolumeAction,
    class_name_of,
    should_delete,
    should_provision,
    should_repair,
)

ME = "gluster.org/heketi"


def claim(
    *, class_name: str | None = "gold", ann: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    annotations = {ANN_STORAGE_PROVISIONER: ME} if ann is None else ann
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"]}
    if class_name is not None:
        spec["storageClassName"] = class_name
    spec.update(extra.pop("spec", {}))
    meta = {"name": "c", "namespace": "ns", "uid": "u1", "annotations": annotations}
    meta.update(extra)
    return {"metadata": meta, "spec": spec}


def sc(provisioner: str = ME, mode: str = "Immediate") -> dict[str, Any]:
    return {"metadata": {"name": "gold"}, "provisioner": provisioner, "volumeBindingMode": mode}


@pytest.mark.parametrize(
    ("the_claim", "the_class", "verdict"),
    [
        (claim(), sc(), ClaimVerdict.PROVISION),
        (claim(ann={ANN_BETA_STORAGE_PROVISIONER: ME}), sc(), ClaimVerdict.PROVISION),
        (claim(spec={"volumeName": "pv1"}), sc(), ClaimVerdict.IGNORE),
        (claim(deletionTimestamp="2024-01-01T00:00:00Z"), sc(), ClaimVerdict.IGNORE),
        (claim(), sc(provisioner="other.io/x"), ClaimVerdict.IGNORE),
        (claim(), None, ClaimVerdict.IGNORE),
        (claim(ann={}), sc(), ClaimVerdict.IGNORE),
        (claim(ann={ANN_STORAGE_PROVISIONER: "other.io/x"}), sc(), ClaimVerdict.IGNORE),
        (claim(), sc(mode="WaitForFirstConsumer"), ClaimVerdict.WAIT_FOR_CONSUMER),
        (
            claim(ann={ANN_STORAGE_PROVISIONER: ME, ANN_SELECTED_NODE: "n1"}),
            sc(mode="WaitForFirstConsumer"),
            ClaimVerdict.PROVISION,
        ),
        # A selector is ours: validation rejects it with an event, not silence.
        (claim(spec={"selector": {"matchLabels": {"a": "b"}}}), sc(), ClaimVerdict.PROVISION),
    ],
)
def test_should_provision(the_claim, the_class, verdict) -> None:
    assert should_provision(the_claim, the_class, ME) is verdict


@pytest.mark.parametrize(
    ("spec_name", "annotation", "expected"),
    [
        ("gold", None, "gold"),
        ("gold", "silver", "silver"),  # the annotation first, as Kubernetes reads it
        (None, "silver", "silver"),
        ("", "silver", "silver"),
        (None, None, None),
        (None, "", None),
        ("gold", "", None),  # an empty annotation means "no class", field or not
    ],
)
def test_the_class_a_claim_or_pv_names(
    spec_name: str | None, annotation: str | None, expected: str | None
) -> None:
    body: dict[str, Any] = {"metadata": {"name": "data", "namespace": "app"}, "spec": {}}
    if spec_name is not None:
        body["spec"]["storageClassName"] = spec_name
    if annotation is not None:
        body["metadata"]["annotations"] = {ANN_BETA_STORAGE_CLASS: annotation}
    assert class_name_of(body) == expected


def pv(
    *,
    phase: str = "Released",
    reclaim: str = "Delete",
    by: str = ME,
    deleting: bool = False,
    finalizers: tuple[str, ...] = (FINALIZER,),
    claim_uid: str = "u1",
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "pvc-u1",
        "annotations": {ANN_PROVISIONED_BY: by},
        "finalizers": list(finalizers),
    }
    if deleting:
        meta["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {
            "persistentVolumeReclaimPolicy": reclaim,
            "claimRef": {"namespace": "ns", "name": "c", "uid": claim_uid},
            "glusterfs": {"endpoints": "glusterfs-dynamic-u1", "path": "p"},
        },
        "status": {"phase": phase},
    }


LIVE = claim()


@pytest.mark.parametrize(
    ("the_pv", "the_claim", "action"),
    [
        (pv(), None, VolumeAction.DELETE),
        (pv(by="someone.else/x"), None, VolumeAction.NONE),
        (pv(reclaim="Retain"), None, VolumeAction.NONE),
        (pv(phase="Bound"), LIVE, VolumeAction.NONE),
        (pv(phase="Available"), None, VolumeAction.NONE),
        # Deleted directly by a user: wait while its claim uses it ...
        (pv(phase="Bound", deleting=True), LIVE, VolumeAction.NONE),
        # ... act once the claim is gone or replaced by a namesake ...
        (pv(phase="Bound", deleting=True), None, VolumeAction.DELETE),
        (pv(phase="Bound", deleting=True, claim_uid="old"), LIVE, VolumeAction.DELETE),
        (pv(phase="Available", deleting=True), None, VolumeAction.DELETE),
        # ... but only with our finalizer on it (otherwise it is already gone for us).
        (pv(phase="Bound", deleting=True, finalizers=()), None, VolumeAction.NONE),
        # Retain keeps the backend, but must not hang on our finalizer.
        (pv(reclaim="Retain", deleting=True), None, VolumeAction.RELEASE_FINALIZER),
        (pv(reclaim="Retain", phase="Bound", deleting=True), LIVE, VolumeAction.NONE),
    ],
)
def test_should_delete(the_pv, the_claim, action) -> None:
    assert should_delete(the_pv, ME, claim=the_claim) is action


@pytest.mark.parametrize(
    ("the_pv", "the_claim", "takeover", "action"),
    [
        # A 1.26+ PV controller without our in-tree plugin marks released PVs Failed.
        (pv(phase="Failed"), None, True, VolumeAction.DELETE),
        (pv(phase="Failed", claim_uid="old"), LIVE, True, VolumeAction.DELETE),
        # Its claim (same uid) is still there: Failed for another reason, keep it.
        (pv(phase="Failed"), claim(uid="u1"), True, VolumeAction.NONE),
        (pv(phase="Failed", reclaim="Retain"), None, True, VolumeAction.NONE),
        (pv(phase="Failed", by="someone.else/x"), None, True, VolumeAction.NONE),
        # Not taking over a removed plugin: Failed is not ours to touch.
        (pv(phase="Failed"), None, False, VolumeAction.NONE),
    ],
)
def test_failed_is_released_only_when_taking_over(the_pv, the_claim, takeover, action) -> None:
    assert should_delete(the_pv, ME, claim=the_claim, failed_is_released=takeover) is action


def test_takeover_acts_on_claims_without_the_annotation() -> None:
    """On 1.26+ the PV controller never annotates claims of a removed plugin's class."""
    bare = claim(ann={})
    storage_class = {"metadata": {"name": "gold"}, "provisioner": ME}
    assert should_provision(bare, storage_class, ME) is ClaimVerdict.IGNORE
    verdict = should_provision(bare, storage_class, ME, annotation_required=False)
    assert verdict is ClaimVerdict.PROVISION


KEY = "ns/glusterfs-dynamic-u1"


@pytest.mark.parametrize(
    ("the_pv", "key", "present", "repair"),
    [
        (pv(phase="Bound"), KEY, True, False),
        (pv(phase="Bound"), KEY, False, True),
        (pv(phase="Bound"), None, False, False),  # the backend keeps nothing beside it
        (pv(phase="Released"), KEY, False, False),
        (pv(phase="Bound", by="someone.else/x"), KEY, False, False),
        (pv(phase="Bound", deleting=True), KEY, False, False),
    ],
)
def test_should_repair(the_pv, key, present, repair) -> None:
    assert should_repair(the_pv, ME, watched_key=key, all_present=present) is repair

"""When a bound claim is grown, and which PV a clone may copy, as tables."""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.controller.clone_source import clone_source, data_source
from provisioner.controller.contract import InvalidInput, Outcome
from provisioner.controller.keys import ANN_PROVISIONED_BY
from provisioner.controller.predicates import ResizeStep, resize_step

ME = "gluster.org/heketi"
UID = "11111111-1111-1111-1111-111111111111"
OTHER_UID = "22222222-2222-2222-2222-222222222222"


def sc(*, expand: Any = True, provisioner: str = ME) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "gold"}, "provisioner": provisioner}
    if expand is not None:
        body["allowVolumeExpansion"] = expand
    return body


def bound_claim(request: str = "3Gi", shown: str = "1Gi", **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "data", "namespace": "ns", "uid": UID},
        "spec": {
            "storageClassName": "gold",
            "volumeName": "pvc-1",
            "resources": {"requests": {"storage": request}},
        },
        "status": {"phase": "Bound", "capacity": {"storage": shown}, **status},
    }


def pv(capacity: str = "1Gi", *, by: str = ME, uid: str = UID, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "pvc-1", "annotations": {ANN_PROVISIONED_BY: by}},
        "spec": {
            "capacity": {"storage": capacity},
            "storageClassName": "gold",
            "claimRef": {"namespace": "ns", "name": "data", "uid": uid},
        },
        "status": {"phase": "Bound"},
        **extra,
    }


RESIZE = [
    ("grow", bound_claim(), pv(), sc(), ResizeStep.EXPAND),
    ("grow-by-bytes", bound_claim("1073741825"), pv(), sc(), ResizeStep.EXPAND),
    ("same-size-other-unit", bound_claim("1024Mi"), pv(), sc(), ResizeStep.NONE),
    ("class-without-expansion", bound_claim(), pv(), sc(expand=None), ResizeStep.NONE),
    ("class-expansion-false", bound_claim(), pv(), sc(expand=False), ResizeStep.NONE),
    ("class-expansion-string", bound_claim(), pv(), sc(expand="true"), ResizeStep.NONE),
    ("class-of-another", bound_claim(), pv(), sc(provisioner="x"), ResizeStep.NONE),
    ("pv-of-another", bound_claim(), pv(by="someone/else"), sc(), ResizeStep.NONE),
    ("pv-of-another-claim", bound_claim(), pv(uid=OTHER_UID), sc(), ResizeStep.NONE),
    ("no-pv", bound_claim(), None, sc(), ResizeStep.NONE),
    ("pv-grown-claim-not", bound_claim(), pv("3Gi"), sc(), ResizeStep.FINISH),
    ("done", bound_claim("3Gi", "3Gi"), pv("3Gi"), sc(), ResizeStep.NONE),
    (
        "done-but-condition-left",
        bound_claim("3Gi", "3Gi", conditions=[{"type": "FileSystemResizePending"}]),
        pv("3Gi"),
        sc(),
        ResizeStep.FINISH,
    ),
    ("smaller-request", bound_claim("500Mi", "1Gi"), pv(), sc(), ResizeStep.NONE),
    ("unreadable-request", bound_claim("lots"), pv(), sc(), ResizeStep.NONE),
]


@pytest.mark.parametrize(("case", "claim", "volume", "klass", "step"), RESIZE,
                         ids=[r[0] for r in RESIZE])  # fmt: skip
def test_resize_step(
    case: str, claim: dict[str, Any], volume: Any, klass: dict[str, Any], step: ResizeStep
) -> None:
    assert resize_step(claim, volume, klass, ME) is step


def test_resize_step_ignores_pending_and_deleted_claims() -> None:
    pending = bound_claim()
    pending["status"]["phase"] = "Pending"
    assert resize_step(pending, pv(), sc(), ME) is ResizeStep.NONE
    going = bound_claim()
    going["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert resize_step(going, pv(), sc(), ME) is ResizeStep.NONE


# -- clone sources ---------------------------------------------------------------------


class Cache(dict):  # type: ignore[type-arg]
    """A Lookup over a dict."""


def clone_claim(size: str = "2Gi", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "copy", "namespace": "ns", "uid": OTHER_UID},
        "spec": {
            "storageClassName": "gold",
            "resources": {"requests": {"storage": size}},
            **spec,
        },
    }


def source(**changes: Any) -> dict[str, Any]:
    claim = bound_claim("1Gi", "1Gi")
    claim["metadata"].update(changes.pop("metadata", {}))
    claim["spec"].update(changes.pop("spec", {}))
    claim["status"].update(changes.pop("status", {}))
    return claim


def find(claim: dict[str, Any], src: Any = None, volume: Any = None) -> dict[str, Any]:
    claims = Cache({"ns/data": source() if src is None else src}) if src is not False else Cache()
    pvs = Cache({"pvc-1": pv() if volume is None else volume}) if volume is not False else Cache()
    return clone_source(claim, sc(), claims=claims, pvs=pvs, provisioner_name=ME)


REF = {"kind": "PersistentVolumeClaim", "name": "data"}

REFUSED = [
    ("snapshot", clone_claim(dataSourceRef={"kind": "VolumeSnapshot", "name": "s",
                                            "apiGroup": "snapshot.storage.k8s.io"}),
     None, None, "Heketi has no snapshot API", Outcome.WAIT_FOR_CHANGE),
    ("other-kind", clone_claim(dataSourceRef={"kind": "Bucket", "name": "b", "apiGroup": "x.io"}),
     None, None, "only a PersistentVolumeClaim", Outcome.WAIT_FOR_CHANGE),
    ("other-namespace", clone_claim(dataSourceRef={**REF, "namespace": "theirs"}),
     None, None, "another namespace", Outcome.WAIT_FOR_CHANGE),
    ("missing", clone_claim(dataSource=REF), False, None, "does not exist", Outcome.RETRY),
    ("unbound", clone_claim(dataSource=REF), source(status={"phase": "Pending"}), None,
     "not bound yet", Outcome.RETRY),
    ("other-class", clone_claim(dataSource=REF), source(spec={"storageClassName": "silver"}),
     None, "within its StorageClass", Outcome.WAIT_FOR_CHANGE),
    ("pv-not-cached", clone_claim(dataSource=REF), None, False, "not known yet", Outcome.RETRY),
    ("pv-of-another-claim", clone_claim(dataSource=REF), source(
        metadata={"uid": "33333333-3333-3333-3333-333333333333"}), None,
     "not bound to a volume", Outcome.WAIT_FOR_CHANGE),
    ("static-pv", clone_claim(dataSource=REF), None, pv(by="operator"),
     "not bound to a volume", Outcome.WAIT_FOR_CHANGE),
    ("smaller", clone_claim("500Mi", dataSource=REF), None, None, "is less than",
     Outcome.WAIT_FOR_CHANGE),
    ("source-being-deleted", clone_claim(dataSource=REF),
     source(metadata={"deletionTimestamp": "2026-01-01T00:00:00Z"}), None, "being deleted",
     Outcome.WAIT_FOR_CHANGE),
]  # fmt: skip


@pytest.mark.parametrize(("case", "claim", "src", "volume", "words", "outcome"), REFUSED,
                         ids=[r[0] for r in REFUSED])  # fmt: skip
def test_clone_source_refusals(
    case: str, claim: dict[str, Any], src: Any, volume: Any, words: str, outcome: Outcome
) -> None:
    with pytest.raises(InvalidInput) as refused:
        find(claim, src, volume)
    assert words in refused.value.message
    assert refused.value.outcome is outcome


def test_clone_source_found_through_either_field() -> None:
    assert find(clone_claim(dataSource=REF))["metadata"]["name"] == "pvc-1"
    assert find(clone_claim(dataSourceRef=REF))["metadata"]["name"] == "pvc-1"
    assert find(clone_claim("1Gi", dataSource=REF))["metadata"]["name"] == "pvc-1"
    assert data_source(clone_claim()) is None


def test_metrics_source_label_is_bounded() -> None:
    """A hostile tenant's data source kinds must not become metric label values."""
    from provisioner.controller.claim_sync import source_label

    assert source_label(None) == ""
    assert source_label(("spec.dataSource", REF)) == "PersistentVolumeClaim"
    assert source_label(("spec.dataSourceRef", {"kind": "VolumeSnapshot"})) == "VolumeSnapshot"
    assert source_label(("spec.dataSourceRef", {"kind": "x" * 500})) == "other"

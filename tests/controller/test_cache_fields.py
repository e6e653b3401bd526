"""Slim cached copies (``k8s.slimming`` + ``controller.cache_fields``): what is kept,
what is shared, and the loud failure when a reader asks for a dropped field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from provisioner.controller import cache_fields
from provisioner.controller.caches import slimmer
from provisioner.controller.predicates import provisioned_by
from provisioner.k8s.slimming import COMMON, SHARED, DroppedField, Fields, slim

PV: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "PersistentVolume",
    "metadata": {
        "name": "pvc-1234",
        "uid": "u-1",
        "resourceVersion": "77",
        "creationTimestamp": "2026-11-29T08:00:00Z",
        "annotations": {"pv.kubernetes.io/provisioned-by": "gluster.org/heketi"},
        "finalizers": ["external-provisioner.volume.kubernetes.io/finalizer"],
        "managedFields": [{"manager": "kube-controller-manager", "fieldsV1": {"f:x": {}}}],
        "ownerReferences": [{"name": "x"}],
    },
    "spec": {
        "capacity": {"storage": "1Gi"},
        "accessModes": ["ReadWriteMany"],
        "persistentVolumeReclaimPolicy": "Delete",
        "claimRef": {
            "namespace": "ns",
            "name": "c",
            "uid": "cu-1",
            "kind": "PersistentVolumeClaim",
        },
        "glusterfs": {"endpoints": "glusterfs-dynamic-cu-1", "path": "pvc-1234"},
        "nfs": {"server": "10.0.0.1", "path": "/export"},  # issue 17: other sources stay
    },
    "status": {"phase": "Bound", "lastPhaseTransitionTime": "2026-11-29T08:00:01Z"},
}

CLAIM: dict[str, Any] = {
    "metadata": {
        "name": "c",
        "namespace": "ns",
        "uid": "cu-1",
        "resourceVersion": "78",
        "annotations": {"volume.kubernetes.io/storage-provisioner": "gluster.org/heketi"},
        "managedFields": [{"manager": "kubectl"}],
    },
    "spec": {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "1Gi"}},
        "dataSourceRef": {"kind": "PersistentVolumeClaim", "name": "src"},  # issue 16
        "volumeName": "pvc-1234",
    },
    "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "conditions": []},
}


def test_kept_fields_read_as_before_and_the_rest_is_dropped() -> None:
    pv = slimmer(cache_fields.PV)(copy.deepcopy(PV))
    assert provisioned_by(pv, "gluster.org/heketi")
    assert pv["spec"] == {k: v for k, v in PV["spec"].items()}  # the whole spec
    assert pv["status"] == {"phase": "Bound"}
    meta = pv["metadata"]
    assert set(meta) == {"name", "uid", "resourceVersion", "annotations", "finalizers"}
    claim = slimmer(cache_fields.CLAIM)(copy.deepcopy(CLAIM))
    assert claim["spec"] == CLAIM["spec"] and claim["status"] == CLAIM["status"]
    assert "managedFields" not in claim["metadata"]
    json.dumps(pv)  # still plain JSON to every consumer


def test_a_dropped_field_fails_loudly_an_absent_kept_one_does_not() -> None:
    pv = slimmer(cache_fields.PV)(copy.deepcopy(PV))
    assert pv["metadata"].get("deletionTimestamp") is None  # kept, just absent
    with pytest.raises(DroppedField, match=r"pv\.metadata\.ownerReferences.*cache_fields"):
        pv["metadata"].get("ownerReferences")
    with pytest.raises(DroppedField, match=r"pv\.status\.lastPhaseTransitionTime"):
        pv["status"]["lastPhaseTransitionTime"]
    with pytest.raises(KeyError):
        pv["metadata"]["deletionTimestamp"]  # a kept key: the usual KeyError


def test_common_values_are_stored_once_across_objects() -> None:
    transform = slimmer(cache_fields.CLAIM)
    one, two = (transform(copy.deepcopy(CLAIM)) for _ in range(2))
    assert one["status"] is two["status"]
    assert one["spec"]["accessModes"] is two["spec"]["accessModes"]
    assert one["metadata"]["annotations"] is two["metadata"]["annotations"]
    pvs = [slimmer(cache_fields.PV)(copy.deepcopy(PV)) for _ in range(2)]
    assert pvs[0]["status"] is pvs[1]["status"]


def test_common_tells_json_types_apart() -> None:
    rule = Fields("t", {"a": COMMON})
    assert slim({"a": [1]}, rule)["a"] is not slim({"a": [True]}, rule)["a"]
    assert slim({"a": [True]}, rule)["a"] == [True]


def test_slimming_never_changes_its_input() -> None:
    original = copy.deepcopy(PV)
    del original["metadata"]["managedFields"]  # the informer strips that one in place
    before = copy.deepcopy(original)
    slim(original, cache_fields.PV)
    assert original == before


def test_shared_strings_are_interned_unique_ones_shared_within_one_object() -> None:
    pv = slim(json.loads(json.dumps(PV)), cache_fields.PV)
    other = slim(json.loads(json.dumps(PV)), cache_fields.PV)
    assert (
        pv["spec"]["persistentVolumeReclaimPolicy"]
        is other["spec"]["persistentVolumeReclaimPolicy"]
    )
    # the volume path equals the PV name: one string object
    assert pv["spec"]["glusterfs"]["path"] is pv["metadata"]["name"]
    rule = Fields("t", {"s": SHARED})
    assert slim({"s": "x" * 3}, rule)["s"] is slim({"s": "xxx"}, rule)["s"]


def test_watched_objects_keep_only_their_key() -> None:
    endpoints = {
        "metadata": {"name": "e", "namespace": "ns", "labels": {"x": "y"}, "uid": "1"},
        "subsets": [{"addresses": [{"ip": "10.0.0.1"}]}],
    }
    assert slimmer(cache_fields.WATCHED)(endpoints) == {
        "metadata": {"name": "e", "namespace": "ns"}
    }


def test_a_tenants_large_unique_annotations_are_not_remembered() -> None:
    """Hostile tenant: claims with large, all-different annotations. They are cached
    with their claims (as before) but the shared-value memory keeps none of them, so
    nothing outlives the claims; and the memory never grows past its limit."""
    from provisioner.k8s import slimming

    transform = slimmer(cache_fields.CLAIM)
    before = len(slimming._common)
    for n in range(50):
        claim = copy.deepcopy(CLAIM)
        claim["metadata"]["annotations"] = {"junk": f"{n}-" + "x" * 5000}
        assert transform(claim)["metadata"]["annotations"]["junk"].startswith(f"{n}-")
    assert len(slimming._common) == before
    for n in range(slimming.COMMON_LIMIT + 10):
        slim({"a": [n]}, Fields("t", {"a": COMMON}))
    assert len(slimming._common) <= slimming.COMMON_LIMIT

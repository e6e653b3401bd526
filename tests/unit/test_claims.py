"""Claims we refuse and the size we ask for."""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.gluster.claims import MAX_VOLUME_GIB, ClaimError, requested_gib, validate_claim


def claim(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
    }
    base.update(spec)
    return {"metadata": {"name": "data", "namespace": "app", "uid": "u-1"}, "spec": base}


@pytest.mark.parametrize("modes", [["ReadWriteOnce"], ["ReadOnlyMany", "ReadWriteMany"]])
def test_supported_claims_pass(modes: list[str]) -> None:
    validate_claim(claim(accessModes=modes, volumeMode="Filesystem"))


def test_read_write_once_pod_message() -> None:
    with pytest.raises(ClaimError) as info:
        validate_claim(claim(accessModes=["ReadWriteOnce", "ReadWriteOncePod"]))
    assert str(info.value) == (
        "claim spec.accessModes: ReadWriteOncePod is not supported by GlusterFS volumes "
        "(use ReadWriteOnce, ReadOnlyMany or ReadWriteMany)"
    )
    assert info.value.field == "spec.accessModes"


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        ({"accessModes": []}, "spec.accessModes", "required"),
        ({"accessModes": None}, "spec.accessModes", "required"),
        ({"selector": {"matchLabels": {"a": "b"}}}, "spec.selector", "selector"),
        ({"volumeMode": "Block"}, "spec.volumeMode", "Filesystem only"),
        # provision() alone never serves a data source: the controller routes such
        # claims to clone() after checking the source (controller.clone_source)
        ({"dataSource": {"kind": "PersistentVolumeClaim", "name": "x"}}, "spec.dataSource",
         "only as a clone"),
        ({"dataSourceRef": {"kind": "VolumeSnapshot", "name": "s"}}, "spec.dataSourceRef",
         "only as a clone"),
        ({"resources": {}}, "spec.resources.requests.storage", "required"),
        ({"resources": {"requests": {}}}, "spec.resources.requests.storage", "required"),
        ({"resources": {"requests": {"storage": ""}}}, "spec.resources.requests.storage",
         "required"),
        ({"resources": {"requests": {"storage": "lots"}}}, "spec.resources.requests.storage",
         "not a quantity"),
        ({"resources": {"requests": {"storage": "0"}}}, "spec.resources.requests.storage",
         "greater than zero"),
        ({"resources": {"requests": {"storage": "-1Gi"}}}, "spec.resources.requests.storage",
         "greater than zero"),
        ({"resources": {"requests": {"storage": "1e30"}}}, "spec.resources.requests.storage",
         "size field"),
    ],
)  # fmt: skip
def test_rejected_claims(spec: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(ClaimError) as info:
        validate_claim(claim(**spec))
    assert info.value.field == field
    assert str(info.value).startswith(f"claim {field}: ")
    assert words in str(info.value)


def test_first_problem_wins_in_documented_order() -> None:
    with pytest.raises(ClaimError) as info:
        validate_claim(claim(accessModes=["ReadWriteOncePod"], volumeMode="Block"))
    assert info.value.field == "spec.accessModes"


@pytest.mark.parametrize(("storage", "gib"), [("129Ti", 129 * 1024), ("1Pi", 1024**2)])
def test_heketi_decides_how_large_a_volume_can_be(storage: str, gib: int) -> None:
    """Heketi's brick_max_size_gb and max_bricks_per_volume are settings: a fixed
    128Ti ceiling here refused claims a configured Heketi could serve."""
    big = claim(resources={"requests": {"storage": storage}})
    validate_claim(big)
    assert requested_gib(big) == gib < MAX_VOLUME_GIB


@pytest.mark.parametrize(("storage", "gib"), [("1500M", 2), ("1Gi", 1), ("100Mi", 1), ("5Gi", 5)])
def test_requested_gib(storage: str, gib: int) -> None:
    assert requested_gib(claim(resources={"requests": {"storage": storage}})) == gib


def test_no_spec_at_all_is_an_error_not_a_crash() -> None:
    with pytest.raises(ClaimError):
        validate_claim({"metadata": {"name": "x"}})

"""1.31+'s ``kubernetes.io/pv-controller`` finalizer (HonorPVReclaimPolicy), emulated
when the sandbox reports 1.31 or later; the same rules as the real controller
(tests/real/test_intree_migration.py sees them on 1.37)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from provisioner.sandbox.kube import KubeSandbox
from provisioner.sandbox.kube.pv_controller import EXTERNAL_FINALIZER, IN_TREE_FINALIZER

PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"


@pytest.fixture
def kube_137() -> Iterator[KubeSandbox]:
    with KubeSandbox(version="1.37.2") as sandbox:
        yield sandbox


def _pv(bodies: Any, name: str, provisioner: str | None, policy: str = "Delete") -> dict:
    body = bodies.volume(name, policy=policy)
    if provisioner:
        body["metadata"]["annotations"] = {PROVISIONED_BY: provisioner}
    body["metadata"]["finalizers"] = [EXTERNAL_FINALIZER]
    return body


def _finalizers(kube: KubeSandbox, name: str) -> list[str] | None:
    """The PV's finalizers but pv-protection (admission's, not the PV controller's)."""
    assert kube.wait_idle()
    pv = kube.get_object("persistentvolumes", None, name)
    if pv is None:
        return None
    return [f for f in pv["metadata"].get("finalizers", []) if f != "kubernetes.io/pv-protection"]


@pytest.mark.parametrize(
    ("provisioner", "policy", "expected"),
    [
        ("kubernetes.io/glusterfs", "Delete", [IN_TREE_FINALIZER]),
        ("kubernetes.io/glusterfs", "Retain", []),
        ("kubernetes.io/gce-pd", "Delete", [EXTERNAL_FINALIZER]),  # CSI-migrated: left
        ("gluster.org/heketi", "Delete", [EXTERNAL_FINALIZER]),  # not in-tree: left
        (None, "Delete", [EXTERNAL_FINALIZER]),  # not dynamically provisioned
    ],
)
def test_which_volumes_get_it(
    kube_137: KubeSandbox, bodies: Any, provisioner: str | None, policy: str, expected: list[str]
) -> None:
    kube_137.create_object("persistentvolumes", _pv(bodies, "v", provisioner, policy))
    assert _finalizers(kube_137, "v") == expected


def test_put_back_until_the_delete_then_the_last_removal_deletes(
    kube_137: KubeSandbox, bodies: Any
) -> None:
    kube_137.create_object("persistentvolumes", _pv(bodies, "v", "kubernetes.io/glusterfs"))
    assert _finalizers(kube_137, "v") == [IN_TREE_FINALIZER]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {kube_137.token}"
    url = f"{kube_137.url}/api/v1/persistentvolumes/v"

    def lift(*keep: str) -> int:
        patch = {"metadata": {"finalizers": list(keep) or None}}
        merge = {"Content-Type": "application/merge-patch+json"}
        return session.patch(url, data=json.dumps(patch), headers=merge, timeout=10).status_code

    assert lift("kubernetes.io/pv-protection") == 200
    assert _finalizers(kube_137, "v") == [IN_TREE_FINALIZER]  # put back
    assert session.delete(url, timeout=10).status_code == 200
    assert _finalizers(kube_137, "v") == [IN_TREE_FINALIZER]  # kept while deleting
    assert lift() == 200  # (pv-protection went with the delete: the PV is not Bound)
    assert _finalizers(kube_137, "v") is None  # not put back: the volume is gone


def test_not_before_1_31(kube: KubeSandbox, bodies: Any) -> None:
    """The default fixture reports 1.30."""
    kube.create_object("persistentvolumes", _pv(bodies, "v", "kubernetes.io/glusterfs"))
    assert _finalizers(kube, "v") == [EXTERNAL_FINALIZER]

"""Taking over ``kubernetes.io/glusterfs`` on a 1.26+ API server, whose PV controller
has no glusterfs plugin: it never annotates claims of such classes and marks released
PVs Failed. The API sandbox emulates both (as checked first here); the same flows run
against the real kube-controller-manager in tests/real."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from provisioner.controller.keys import ANN_PROVISIONED_BY, FINALIZER, PV_CONTROLLER_FINALIZER
from provisioner.gluster.annotations import ANN_HEKETI_VOLUME_ID

from .test_adoption_and_gate import IN_TREE, NAMESPACE, in_tree_volume

if TYPE_CHECKING:
    from conftest import Cluster

CURRENT = "1.30.2"
PV_CONTROLLER_FINALIZER_RELEASE = "1.37.2"  # 1.31+: kubernetes.io/pv-controller


def phase(cluster: Cluster, name: str) -> str | None:
    pv = cluster.get("persistentvolumes", name)
    return None if pv is None else (pv.get("status") or {}).get("phase")


def test_the_sandbox_behaves_like_a_1_26_pv_controller(cluster_factory: Any) -> None:
    """Checked first, since the tests below depend on it: no annotation and a
    ProvisioningFailed event for the claim, Failed (not Released) for the PV."""
    cluster: Cluster = cluster_factory(kube_version=CURRENT, with_controller=False)
    sc = cluster.storage_class(provisioner=IN_TREE)
    claim = cluster.claim(sc)
    assert "no volume plugin matched" in cluster.warning(claim)
    annotations = cluster.fresh_claim(claim)["metadata"].get("annotations") or {}
    assert "volume.kubernetes.io/storage-provisioner" not in annotations

    old_claim, old_pv = in_tree_volume(cluster, sc)
    cluster.bound_pv(old_claim)
    cluster.delete_claim(old_claim)
    name = old_pv["metadata"]["name"]
    cluster.wait_for(lambda: phase(cluster, name) == "Failed", what="the PV Failed")


def test_claims_of_taken_over_classes_are_served_and_told(cluster_factory: Any) -> None:
    """Before: the controller waited for an annotation that never comes and said
    nothing. Now the claim is provisioned (with --assume-glusterfs-plugin) ..."""
    cluster: Cluster = cluster_factory(kube_version=CURRENT, with_controller=False)
    cluster.start_controller(provisioner_name=IN_TREE, assume_glusterfs_plugin=True)
    sc = cluster.storage_class(provisioner=IN_TREE)
    pv = cluster.bound_pv(cluster.claim(sc))
    assert pv["metadata"]["annotations"][ANN_PROVISIONED_BY] == IN_TREE


def test_without_the_plugin_assumption_the_claim_gets_our_warning(cluster_factory: Any) -> None:
    """... and without it the claim gets the version gate's Warning, not silence."""
    cluster: Cluster = cluster_factory(kube_version=CURRENT, with_controller=False)
    cluster.start_controller(provisioner_name=IN_TREE)
    claim = cluster.claim(cluster.storage_class(provisioner=IN_TREE))
    cluster.wait_for(
        lambda: any("assume-glusterfs-plugin" in (e.get("message") or "")
                    for e in cluster.events(claim)),
        what="the version gate's Warning on the claim",
    )  # fmt: skip
    assert cluster.sim.requests == []


@pytest.mark.parametrize("version", [CURRENT, PV_CONTROLLER_FINALIZER_RELEASE])
def test_a_failed_in_tree_pv_is_reclaimed(cluster_factory: Any, version: str) -> None:
    """Before: Failed PVs were never acted on and their volumes leaked. On 1.31+ the
    PV controller's own finalizer is on them too, and only we lift it (after the
    delete: before it, the PV controller puts it straight back)."""
    cluster: Cluster = cluster_factory(kube_version=version, with_controller=False)
    sc = cluster.storage_class(provisioner=IN_TREE)
    old_claim, old_pv = in_tree_volume(cluster, sc)
    cluster.bound_pv(old_claim)
    cluster.delete_claim(old_claim)
    name = old_pv["metadata"]["name"]
    cluster.wait_for(lambda: phase(cluster, name) == "Failed", what="the PV Failed")
    finalizers = cluster.get("persistentvolumes", name)["metadata"].get("finalizers") or []
    assert (PV_CONTROLLER_FINALIZER in finalizers) == (version != CURRENT), finalizers

    cluster.start_controller(provisioner_name=IN_TREE)
    cluster.wait_for(lambda: cluster.get("persistentvolumes", name) is None, what="PV gone")
    volume_id = old_pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID]
    assert volume_id not in [v["id"] for v in cluster.sim.volumes()]


def test_a_refused_class_does_not_block_the_delete_of_its_pvs(cluster_factory: Any) -> None:
    """Before: the delete path ran the strict class parser, so one parameter it
    refuses (here ``volumetype: mirror``, and an unknown key) blocked the delete of
    every PV of the class. Deleting needs only the URL, the user and the Secret."""
    cluster: Cluster = cluster_factory(kube_version=CURRENT, with_controller=False)
    sc = cluster.storage_class(provisioner=IN_TREE, volumetype="mirror", colour="blue")
    old_claim, old_pv = in_tree_volume(cluster, sc)
    cluster.bound_pv(old_claim)
    cluster.start_controller(provisioner_name=IN_TREE)
    cluster.delete_claim(old_claim)
    name = old_pv["metadata"]["name"]
    cluster.wait_for(lambda: cluster.get("persistentvolumes", name) is None, what="PV gone")
    assert cluster.sim.volumes() == []


def _uninstall(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "provisioner", "uninstall",
         "--kubeconfig", cluster.stack.kubeconfig_path, "--namespace", NAMESPACE, *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_uninstall_releases_our_pvs_but_refuses_mid_delete(cluster_factory: Any) -> None:
    """Before: removing the controller left every PV of ours stuck Terminating."""
    cluster: Cluster = cluster_factory(with_controller=False)
    cluster.start_controller()
    sc = cluster.storage_class()
    kept = cluster.bound_pv(cluster.claim(sc))
    going_claim = cluster.claim(sc)
    going = cluster.bound_pv(going_claim)
    cluster.stop_controller(grace=1.0)
    cluster.delete_claim(going_claim)  # Released under Delete, nobody to delete it
    name = going["metadata"]["name"]
    cluster.wait_for(lambda: phase(cluster, name) == "Released", what="Released")

    refused = _uninstall(cluster)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert name in refused.stdout and "--force" in refused.stdout
    assert FINALIZER in cluster.get("persistentvolumes", kept["metadata"]["name"])[
        "metadata"]["finalizers"]  # fmt: skip

    done = _uninstall(cluster, "--force")
    assert done.returncode == 0, done.stdout + done.stderr
    for pv in (kept, going):
        found = cluster.get("persistentvolumes", pv["metadata"]["name"])
        assert FINALIZER not in ((found or {}).get("metadata") or {}).get("finalizers", [])
    assert len(cluster.sim.volumes()) == 2  # the volumes stay: only the finalizer went


def test_no_pv_finalizer_writes_pvs_without_it(cluster_factory: Any) -> None:
    cluster: Cluster = cluster_factory(pv_finalizer=False)
    pv = cluster.bound_pv(cluster.claim(cluster.storage_class()))
    assert FINALIZER not in (pv["metadata"].get("finalizers") or [])


def test_uninstall_releases_block_pvs_too(cluster_factory: Any) -> None:
    """One process serves both names: before, uninstall left block PVs with our
    finalizer (they would hang in Terminating once the controller is gone)."""
    from tests.e2e.test_block_and_nfs import block_class

    cluster: Cluster = cluster_factory(with_controller=False)
    cluster.start_controller()
    file_pv = cluster.bound_pv(cluster.claim(cluster.storage_class()))
    block_pv = cluster.bound_pv(cluster.claim(block_class(cluster), accessModes=["ReadWriteOnce"]))
    assert FINALIZER in block_pv["metadata"]["finalizers"]
    cluster.stop_controller(grace=1.0)

    off = _uninstall(cluster, "--block-provisioner-name", "")
    assert off.returncode == 0, off.stdout + off.stderr
    still = cluster.get("persistentvolumes", block_pv["metadata"]["name"])
    assert FINALIZER in still["metadata"]["finalizers"]  # block named off: left alone

    done = _uninstall(cluster)
    assert done.returncode == 0, done.stdout + done.stderr
    for pv in (file_pv, block_pv):
        found = cluster.get("persistentvolumes", pv["metadata"]["name"])
        assert FINALIZER not in ((found or {}).get("metadata") or {}).get("finalizers", [])

"""Growing a bound claim and cloning one, end to end against the sandbox.

The sandbox speaks as a 1.37 API server here (with --assume-glusterfs-plugin): up to
1.25 kube-controller-manager's in-tree glusterfs plugin grows glusterfs PVs itself,
and the controller leaves resizes to it (``test_resize_left_to_the_server_on_1_25``).
The test polls through the sandbox's Python side (no HTTP), so the request log holds
only the controller's requests and the test's own writes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from provisioner.sandbox.kube.request_log import RequestRecord

from .conftest import NAMESPACE, Cluster

CURRENT = {"kube_version": "1.37.2", "assume_glusterfs_plugin": True}
CLONE_OF = "heketi-provisioner.gluster.org/clone-of"
GID = "pv.beta.kubernetes.io/gid"
VOLUME_ID = "gluster.kubernetes.io/heketi-volume-id"


def claim_now(cluster: Cluster, claim: dict[str, Any]) -> dict[str, Any]:
    found = cluster.sandbox.get_object(
        "persistentvolumeclaims", NAMESPACE, claim["metadata"]["name"]
    )
    assert found is not None
    return found


def grow(cluster: Cluster, claim: dict[str, Any], size: str) -> None:
    cluster.kube.patch(
        "persistentvolumeclaims",
        claim["metadata"]["name"],
        {"spec": {"resources": {"requests": {"storage": size}}}},
        NAMESPACE,
    )


def wait_capacity(cluster: Cluster, claim: dict[str, Any], size: str) -> dict[str, Any]:
    def shown() -> dict[str, Any] | None:
        fresh = claim_now(cluster, claim)
        return (
            fresh
            if (fresh.get("status") or {}).get("capacity", {}).get("storage") == size
            else None
        )

    return cluster.wait_for(shown, 20, f"claim capacity {size}")


def reasons(cluster: Cluster, obj: dict[str, Any]) -> list[str]:
    return [str(e.get("reason")) for e in cluster.events(obj)]


def heketi_volume(cluster: Cluster, volume_id: str) -> dict[str, Any]:
    return next(v for v in cluster.sim.volumes() if v["id"] == volume_id)


def kube_writes(log: list[RequestRecord]) -> Counter[str]:
    return Counter(
        f"{r.verb} {r.resource}{'/' + r.subresource if r.subresource else ''}"
        for r in log
        if r.verb not in ("get", "list", "watch")
    )


# -- expansion -----------------------------------------------------------------------


def test_claim_grows_from_1_to_3_gib(cluster_factory: Any) -> None:
    cluster = cluster_factory(**CURRENT)
    sc = cluster.storage_class(expandable=True)
    claim = cluster.claim(sc, size="1Gi")
    pv = cluster.bound_pv(claim)
    volume_id = pv["metadata"]["annotations"][VOLUME_ID]
    assert heketi_volume(cluster, volume_id)["size"] == 1
    cluster.sim.reset_requests()
    cluster.sandbox.clear_request_log()

    grow(cluster, claim, "3Gi")

    fresh = wait_capacity(cluster, claim, "3Gi")
    cluster.wait_for(
        lambda: "VolumeResizeSuccessful" in reasons(cluster, claim), 10, "VolumeResizeSuccessful"
    )
    assert [c.get("type") for c in fresh["status"].get("conditions") or ()] == []
    pv = cluster.sandbox.get_object("persistentvolumes", None, pv["metadata"]["name"])
    assert pv is not None and pv["spec"]["capacity"]["storage"] == "3Gi"
    assert heketi_volume(cluster, volume_id)["size"] == 3
    assert "Resizing" in reasons(cluster, claim)
    # One expand by the difference; the size was read first, nothing else was asked.
    heketi = cluster.heketi_counts()
    assert heketi["POST /volumes/{id}/expand 202"] == 1, heketi
    assert heketi["POST /volumes 202"] == 0 and heketi["POST /volumes/{id}/clone 202"] == 0
    expand = [r for r in cluster.sim.requests if r.route.endswith("/expand")]
    assert len(expand) == 1
    writes = kube_writes(cluster.sandbox.request_log)
    assert writes["patch persistentvolumes"] == 1, writes
    assert writes["patch persistentvolumeclaims/status"] == 1, writes
    assert writes["create events"] == 2, writes  # Resizing, VolumeResizeSuccessful
    assert writes["patch persistentvolumeclaims"] == 1, writes  # the test's own resize


def test_resize_refused_by_admission_without_allow_volume_expansion(cluster_factory: Any) -> None:
    cluster = cluster_factory(**CURRENT)
    sc = cluster.storage_class()
    claim = cluster.claim(sc, size="1Gi")
    cluster.bound_pv(claim)
    cluster.sim.reset_requests()

    from provisioner.k8s.errors import KubeAPIError

    with pytest.raises(KubeAPIError) as refused:
        grow(cluster, claim, "2Gi")
    assert refused.value.status == 403
    assert "the storageclass that provisions the pvc must support resize" in refused.value.message
    with pytest.raises(KubeAPIError) as shrink:
        grow(cluster, claim, "500Mi")
    assert shrink.value.status == 422
    assert "spec.resources.requests.storage" in shrink.value.message
    assert cluster.heketi_counts() == Counter()


def test_heketi_refusing_the_space_keeps_the_old_size_and_says_why(cluster_factory: Any) -> None:
    cluster = cluster_factory(**CURRENT)
    sc = cluster.storage_class(expandable=True)
    claim = cluster.claim(sc, size="1Gi")
    pv = cluster.bound_pv(claim)

    grow(cluster, claim, "100Ti")

    message = cluster.warning(claim)
    # Heketi's own reason is quoted (for a large grow it runs into its 32-brick limit
    # before "No space", as the real Heketi does), and what it means for the claim.
    assert "Maximum number of bricks reached." in message, message
    assert "keeps its current size" in message, message
    assert "VolumeResizeFailed" in reasons(cluster, claim)
    assert claim_now(cluster, claim)["status"]["capacity"]["storage"] == "1Gi"
    fresh_pv = cluster.sandbox.get_object("persistentvolumes", None, pv["metadata"]["name"])
    assert fresh_pv is not None and fresh_pv["spec"]["capacity"]["storage"] == "1Gi"
    assert heketi_volume(cluster, pv["metadata"]["annotations"][VOLUME_ID])["size"] == 1


def test_resize_left_to_the_server_on_1_25(cluster_factory: Any) -> None:
    """kube-controller-manager 1.25 has the glusterfs plugin, which grows these PVs
    with the class's parameters; a second resizer would race its increment."""
    cluster = cluster_factory()  # 1.25.16
    sc = cluster.storage_class(expandable=True)
    claim = cluster.claim(sc, size="1Gi")
    cluster.bound_pv(claim)
    cluster.sim.reset_requests()

    grow(cluster, claim, "2Gi")
    assert cluster.controller is not None
    cluster.controller.resync()
    cluster.wait_for(lambda: len(cluster.controller.queue) == 0, 10, "an idle queue")  # type: ignore[union-attr]

    assert cluster.heketi_counts() == Counter()
    assert "Resizing" not in reasons(cluster, claim)


# -- cloning -------------------------------------------------------------------------


def test_clone_binds_with_its_own_volume_and_grows(cluster_factory: Any) -> None:
    cluster = cluster_factory(**CURRENT)
    sc = cluster.storage_class()
    source = cluster.claim(sc, size="1Gi")
    source_pv = cluster.bound_pv(source)
    cluster.sim.reset_requests()
    cluster.sandbox.clear_request_log()

    clone = cluster.claim(
        sc, size="2Gi",
        dataSource={"kind": "PersistentVolumeClaim", "name": source["metadata"]["name"]},
    )  # fmt: skip
    pv = cluster.bound_pv(clone)

    uid = clone["metadata"]["uid"]
    ann = pv["metadata"]["annotations"]
    source_ann = source_pv["metadata"]["annotations"]
    assert pv["metadata"]["name"] == f"pvc-{uid}"
    assert ann[VOLUME_ID] != source_ann[VOLUME_ID]
    assert ann[CLONE_OF] == source_ann[VOLUME_ID]
    # Heketi copies the source's GID, and the clone's files carry it: the PV says so.
    assert ann[GID] == source_ann[GID]
    assert pv["spec"]["glusterfs"]["path"] == f"pvc-{uid}"
    assert pv["spec"]["glusterfs"]["endpoints"] == f"glusterfs-dynamic-{uid}"
    assert cluster.get("endpoints", f"glusterfs-dynamic-{uid}", NAMESPACE) is not None
    assert cluster.get("services", f"glusterfs-dynamic-{uid}", NAMESPACE) is not None
    volume = heketi_volume(cluster, ann[VOLUME_ID])
    assert volume["name"] == f"pvc-{uid}" and volume["size"] == 2
    assert pv["spec"]["capacity"]["storage"] == "2Gi"
    heketi = cluster.heketi_counts()
    assert heketi["POST /volumes/{id}/clone 202"] == 1, heketi
    assert heketi["POST /volumes/{id}/expand 202"] == 1, heketi
    assert heketi["POST /volumes 202"] == 0, heketi
    assert "ProvisioningSucceeded" in reasons(cluster, clone)

    # Delete works like a normal PV's, and the shared GID stays held by the source.
    cluster.delete_claim(clone)
    cluster.wait_for(
        lambda: cluster.get("persistentvolumes", pv["metadata"]["name"]) is None,
        20,
        "clone PV gone",
    )
    assert [v["id"] for v in cluster.sim.volumes()] == [source_ann[VOLUME_ID]]
    assert cluster.controller is not None
    # The file backend (the controller also serves the block name: a Backends).
    backend = cluster.controller.provisioner.by_name["gluster.org/heketi"]  # type: ignore[attr-defined]
    gids = backend.ledger.gids
    assert gids.is_used(sc, int(source_ann[GID]))
    third = cluster.claim(sc)
    assert cluster.bound_pv(third)["metadata"]["annotations"][GID] != source_ann[GID]


REFUSALS = [
    (
        "snapshot",
        {
            "dataSourceRef": {
                "kind": "VolumeSnapshot",
                "apiGroup": "snapshot.storage.k8s.io",
                "name": "snap",
            }
        },
        "Heketi has no snapshot API",
    ),
    (
        "missing",
        {"dataSource": {"kind": "PersistentVolumeClaim", "name": "nobody"}},
        "does not exist",
    ),
    ("smaller", None, "is less than"),
    ("other-class", None, "a volume can only be cloned within its StorageClass"),
]


@pytest.mark.parametrize(("case", "source", "words"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_clone_refusals_get_an_event_and_no_heketi_call(
    cluster_factory: Any, case: str, source: dict[str, Any] | None, words: str
) -> None:
    cluster = cluster_factory(**CURRENT)
    sc = cluster.storage_class()
    other = cluster.storage_class()
    origin = cluster.claim(other if case == "other-class" else sc, size="2Gi")
    cluster.bound_pv(origin)
    cluster.sim.reset_requests()
    spec = source or {"dataSource": {"kind": "PersistentVolumeClaim",
                                     "name": origin["metadata"]["name"]}}  # fmt: skip

    clone = cluster.claim(sc, size="1Gi", **spec)

    message = cluster.warning(clone)
    assert words in message, message
    counts = cluster.heketi_counts()
    assert not [k for k in counts if not k.startswith("GET ")], counts

"""Each kind of disagreement between Heketi and Kubernetes is found, and only it."""

from __future__ import annotations

import uuid

from provisioner.audit.compare import run_audit
from provisioner.audit.report import AuditReport
from provisioner.gluster.annotations import ANN_GID
from provisioner.gluster.pool import HeketiTarget

from .conftest import ADMIN_KEY, NAMESPACE, PROVISIONER, Cluster, fast_pool


def audit(cluster: Cluster, **kwargs: object) -> AuditReport:
    kwargs.setdefault("provisioner_name", PROVISIONER)
    return run_audit(cluster.kube, pool=fast_pool(), **kwargs)  # type: ignore[arg-type]


def test_clean_installation_has_no_problems(cluster: Cluster) -> None:
    sc = cluster.storage_class()
    cluster.provisioned(sc)
    cluster.provisioned(cluster.storage_class(volumenameprefix="app"))
    cluster.heketi_volume(None)  # someone else's (vol_<id>): not ours to judge

    report = audit(cluster)

    assert report.problems == 0
    assert report.errors == ()
    assert report.exit_code() == 0
    assert report.pvs == 2
    assert report.heketi_volumes == 2
    (server,) = report.servers
    assert (server.url, server.volumes, server.ours, server.error) == (cluster.sim.url, 3, 2, None)


def test_volume_named_like_ours_without_a_pv_is_an_orphan(cluster: Cluster) -> None:
    cluster.provisioned(cluster.storage_class())
    plain = cluster.heketi_volume(f"pvc-{uuid.uuid4()}")
    prefixed_uid = str(uuid.uuid4())
    prefixed = cluster.heketi_volume(f"app_shop_db_{prefixed_uid}")

    report = audit(cluster)

    assert {(o.volume_id, o.volume_name) for o in report.orphans} == {
        (plain.id, plain.name),
        (prefixed.id, prefixed.name),
    }
    assert {o.claim_uid for o in report.orphans} >= {prefixed_uid}
    assert all(o.server == cluster.sim.url and o.claim is None for o in report.orphans)
    assert report.problems == 2
    assert report.exit_code() == 1


def test_orphan_of_a_pending_claim_names_the_claim(cluster: Cluster) -> None:
    sc = cluster.storage_class()
    claim = cluster.claim(sc)
    cluster.gluster.provision(claim, sc)  # the volume exists, the PV was never written

    report = audit(cluster)

    (orphan,) = report.orphans
    assert orphan.claim_uid == claim["metadata"]["uid"]
    assert orphan.claim == f"{NAMESPACE}/{claim['metadata']['name']} (Pending)"


def test_pv_whose_volume_was_deleted_in_heketi_is_reported(cluster: Cluster) -> None:
    sc = cluster.storage_class()
    claim, pv = cluster.provisioned(sc)
    cluster.provisioned(sc)
    volume_id = pv["metadata"]["annotations"]["gluster.kubernetes.io/heketi-volume-id"]
    cluster.heketi.delete_volume(volume_id)

    report = audit(cluster)

    (missing,) = report.missing_volumes
    assert missing.pv == pv["metadata"]["name"]
    assert missing.volume_id == volume_id
    assert missing.server == cluster.sim.url
    assert missing.claim is not None and claim["metadata"]["name"] in missing.claim
    assert report.orphans == ()
    assert report.problems == 1


def test_deleted_endpoints_and_services_are_reported_separately(cluster: Cluster) -> None:
    sc = cluster.storage_class()
    _, first = cluster.provisioned(sc)
    _, second = cluster.provisioned(sc)
    first_name = first["spec"]["glusterfs"]["endpoints"]
    second_name = second["spec"]["glusterfs"]["endpoints"]
    cluster.kube.delete("endpoints", first_name, NAMESPACE)
    cluster.kube.delete("services", second_name, NAMESPACE)

    report = audit(cluster)

    assert [(m.pv, m.namespace, m.name) for m in report.missing_endpoints] == [
        (first["metadata"]["name"], NAMESPACE, first_name)
    ]
    assert [(m.pv, m.name) for m in report.missing_services] == [
        (second["metadata"]["name"], second_name)
    ]
    assert report.problems == 2


def test_same_gid_on_two_pvs_of_one_class_is_a_collision(cluster: Cluster) -> None:
    sc = cluster.storage_class()
    _, first = cluster.provisioned(sc)
    _, second = cluster.provisioned(sc)
    other_class = cluster.storage_class()
    _, elsewhere = cluster.provisioned(other_class)
    gid = first["metadata"]["annotations"][ANN_GID]
    assert elsewhere["metadata"]["annotations"][ANN_GID] == gid  # per class: fine
    cluster.kube.patch(
        "persistentvolumes",
        second["metadata"]["name"],
        {"metadata": {"annotations": {ANN_GID: gid}}},
    )

    report = audit(cluster)

    (collision,) = report.gid_collisions
    assert collision.storage_class == sc["metadata"]["name"]
    assert collision.gid == int(gid)
    assert collision.pvs == tuple(sorted([first["metadata"]["name"], second["metadata"]["name"]]))
    assert report.problems == 1


def test_two_volumes_for_one_claim_uid_are_duplicates(cluster: Cluster) -> None:
    sc = cluster.storage_class()
    claim, pv = cluster.provisioned(sc)
    uid = claim["metadata"]["uid"]
    second = cluster.heketi_volume(f"old_{NAMESPACE}_{claim['metadata']['name']}_{uid}")

    report = audit(cluster)

    (duplicate,) = report.duplicates
    assert duplicate.claim_uid == uid
    assert duplicate.pv == pv["metadata"]["name"]
    in_use = pv["metadata"]["annotations"]["gluster.kubernetes.io/heketi-volume-id"]
    assert {v.volume_id for v in duplicate.volumes} == {in_use, second.id}
    # The extra one is also an orphan: nothing refers to it.
    assert [o.volume_id for o in report.orphans] == [second.id]


def test_in_tree_pvs_are_judged_through_their_storage_class(cluster: Cluster) -> None:
    in_tree = "kubernetes.io/glusterfs"
    sc = cluster.storage_class(provisioner=in_tree)
    volume = cluster.heketi_volume(None)  # in-tree without prefix: Heketi names vol_<id>
    cluster.kube.create(
        "persistentvolumes",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": "pvc-in-tree",
                "annotations": {
                    "pv.kubernetes.io/provisioned-by": in_tree,
                    "gluster.kubernetes.io/heketi-volume-id": volume.id,
                    ANN_GID: "2000",
                },
            },
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany"],
                "storageClassName": sc["metadata"]["name"],
                "persistentVolumeReclaimPolicy": "Delete",
                "glusterfs": {"endpoints": "glusterfs-dynamic-x", "path": volume.name},
            },
        },
    )
    for kind in ("endpoints", "services"):
        body = {"metadata": {"name": "glusterfs-dynamic-x", "namespace": NAMESPACE}}
        if kind == "endpoints":
            body["subsets"] = [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 1}]}]
        else:
            body["spec"] = {"ports": [{"port": 1}]}
        cluster.kube.create(kind, body, NAMESPACE)

    report = audit(cluster, provisioner_name=in_tree)
    assert (report.pvs, report.heketi_volumes, report.problems, report.errors) == (1, 1, 0, ())
    # Our own provisioner name does not claim in-tree PVs.
    assert audit(cluster).pvs == 0

    cluster.kube.delete("storageclasses", sc["metadata"]["name"])
    report = audit(cluster, provisioner_name=in_tree)
    assert report.exit_code() == 2
    assert any("pvc-in-tree" in e and "which Heketi" in e for e in report.errors)


def test_server_without_pvs_is_audited_with_given_credentials(cluster: Cluster) -> None:
    orphan = cluster.heketi_volume(f"pvc-{uuid.uuid4()}")
    target = HeketiTarget(cluster.sim.url, "admin", ADMIN_KEY)

    report = audit(cluster, extra_targets=[target])

    assert [o.volume_id for o in report.orphans] == [orphan.id]
    assert report.errors == ()


def test_unreachable_heketi_makes_the_audit_incomplete(cluster: Cluster) -> None:
    sc = cluster.storage_class()
    cluster.provisioned(sc)
    cluster.sim.down()

    report = audit(cluster)

    assert report.exit_code() == 2
    (error,) = report.errors
    assert cluster.sim.url in error and "unreachable" in error
    assert report.missing_volumes == ()  # nothing is judged missing on an unread server
    assert report.servers[0].error is not None


def test_missing_secret_is_named_when_no_credentials_remain(cluster: Cluster) -> None:
    sc = cluster.storage_class()
    cluster.provisioned(sc)
    secret = sc["parameters"]["secretName"]
    cluster.kube.delete("secrets", secret, NAMESPACE)

    report = audit(cluster)

    assert report.exit_code() == 2
    (error,) = report.errors
    assert f"Secret {NAMESPACE}/{secret}" in error
    assert "--heketi-key-file" in error

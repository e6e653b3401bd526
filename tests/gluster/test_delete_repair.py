"""Delete from the PV alone (ours and in-tree ones), repair of missing endpoints."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from provisioner.controller.contract import Outcome, ProvisionError
from provisioner.controller.keys import ANN_PROVISIONED_BY
from provisioner.gluster.annotations import ANN_GID, ANN_HEKETI_VOLUME_ID

if TYPE_CHECKING:
    from conftest import World

NAMESPACE = "default"


def provisioned(world: World, **class_params: Any) -> tuple[Any, dict, dict, dict]:
    gluster = world.provisioner()
    sc = world.storage_class(**class_params)
    claim = world.claim(sc)
    pv = gluster.provision(claim, sc)
    return gluster, sc, claim, pv


def endpoints_of(world: World, pv: dict) -> list[str]:
    name = pv["spec"]["glusterfs"]["endpoints"]
    return [
        kind
        for kind in ("endpoints", "services")
        if world.sandbox.get_object(kind, NAMESPACE, name) is not None
    ]


def test_delete_removes_volume_and_endpoints_and_frees_the_gid(world: World) -> None:
    gluster, sc, _, pv = provisioned(world)
    assert endpoints_of(world, pv) == ["endpoints", "services"]

    gluster.delete(pv)

    assert world.sim.volumes() == []
    assert endpoints_of(world, pv) == []
    reused = gluster.provision(world.claim(sc), sc)
    assert reused["metadata"]["annotations"][ANN_GID] == pv["metadata"]["annotations"][ANN_GID]


def test_delete_twice_is_fine_and_releases_the_gid_once(world: World) -> None:
    gluster, sc, _, pv = provisioned(world)
    gluster.delete(pv)
    newcomer = gluster.provision(world.claim(sc), sc)  # takes the freed gid 2000

    gluster.delete(pv)  # e.g. the finalizer removal failed and the controller retries

    third = gluster.provision(world.claim(sc), sc)
    assert newcomer["metadata"]["annotations"][ANN_GID] == "2000"
    assert third["metadata"]["annotations"][ANN_GID] == "2001"


def test_delete_works_after_class_and_secret_are_gone_in_a_new_process(world: World) -> None:
    _, sc, _, pv = provisioned(world)
    world.kube.delete("storageclasses", sc["metadata"]["name"])

    world.provisioner().delete(pv)

    assert world.sim.volumes() == []


def test_delete_falls_back_to_the_remembered_key_when_the_secret_is_gone(world: World) -> None:
    gluster, sc, _, pv = provisioned(world)
    world.kube.delete("secrets", sc["parameters"]["secretName"], NAMESPACE)

    gluster.delete(pv)

    assert world.sim.volumes() == []


def test_delete_without_secret_or_memory_says_restore_the_secret(world: World) -> None:
    _, sc, _, pv = provisioned(world)
    secret = sc["parameters"]["secretName"]
    world.kube.delete("secrets", secret, NAMESPACE)

    with pytest.raises(ProvisionError) as caught:
        world.provisioner().delete(pv)

    assert f"Secret {NAMESPACE}/{secret}" in caught.value.message
    assert caught.value.outcome is Outcome.RETRY
    assert len(world.sim.volumes()) == 1


def test_delete_after_an_unknown_outcome_checks_by_get(world: World) -> None:
    gluster, _, _, pv = provisioned(world)
    world.sim.faults.lose_result_next("volume_delete")

    gluster.delete(pv)

    assert world.sim.volumes() == []
    assert world.counts().get("GET /volumes/{id} 404") == 1


def in_tree_pv(world: World, sc: dict, claim: dict, volume: dict) -> dict[str, Any]:
    """A PV as the in-tree provisioner wrote it: no annotations of ours."""
    uid = claim["metadata"]["uid"]
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{uid}",
            "annotations": {
                ANN_GID: str(volume["gid"]),
                ANN_HEKETI_VOLUME_ID: volume["id"],
                ANN_PROVISIONED_BY: "kubernetes.io/glusterfs",
                "gluster.org/type": "file",
            },
        },
        "spec": {
            "storageClassName": sc["metadata"]["name"],
            "claimRef": {"namespace": NAMESPACE, "name": claim["metadata"]["name"], "uid": uid},
            "glusterfs": {"endpoints": f"glusterfs-dynamic-{uid}", "path": f"vol_{volume['id']}"},
        },
    }


def test_in_tree_pv_is_deleted_through_its_class(world: World) -> None:
    _, sc, claim, _ = provisioned(world)
    (volume,) = world.sim.volumes()
    pv = in_tree_pv(world, sc, claim, volume)

    world.provisioner().delete(pv)

    assert world.sim.volumes() == []
    assert endpoints_of(world, pv) == []


def test_in_tree_pv_without_its_class_says_exactly_that(world: World) -> None:
    _, sc, claim, _ = provisioned(world)
    (volume,) = world.sim.volumes()
    pv = in_tree_pv(world, sc, claim, volume)
    world.kube.delete("storageclasses", sc["metadata"]["name"])

    with pytest.raises(ProvisionError) as caught:
        world.provisioner().delete(pv)

    message = caught.value.message
    assert "provisioned in-tree" in message
    assert f"StorageClass {sc['metadata']['name']} no longer exists" in message
    assert len(world.sim.volumes()) == 1


def test_foreign_endpoints_of_the_same_name_are_left_alone(world: World) -> None:
    gluster, _, _, pv = provisioned(world)
    name = pv["spec"]["glusterfs"]["endpoints"]
    world.kube.delete("services", name, NAMESPACE)
    world.kube.create(
        "services",
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": name, "namespace": NAMESPACE},
         "spec": {"ports": [{"port": 80}]}},
        NAMESPACE,
    )  # fmt: skip
    pv = dict(pv)
    pv["spec"] = {**pv["spec"], "claimRef": {**pv["spec"]["claimRef"], "uid": "someone-else"}}

    gluster.delete(pv)

    assert endpoints_of(world, pv) == ["services"]


def bound(pv: dict) -> dict:
    return {**pv, "status": {"phase": "Bound"}}


def test_repair_recreates_deleted_endpoints_with_heketi_ips(world: World) -> None:
    gluster, _, _, pv = provisioned(world)
    name = pv["spec"]["glusterfs"]["endpoints"]
    world.kube.delete("endpoints", name, NAMESPACE)

    assert gluster.repair(bound(pv)) is True

    endpoints = world.sandbox.get_object("endpoints", NAMESPACE, name)
    assert endpoints is not None
    ips = sorted(a["ip"] for s in endpoints["subsets"] for a in s["addresses"])
    assert ips == ["10.0.1.1", "10.0.1.2", "10.0.1.3"]


def test_repair_with_nothing_missing_asks_heketi_nothing(world: World) -> None:
    gluster, _, _, pv = provisioned(world)
    before = world.heketi_requests()
    assert gluster.repair(bound(pv)) is False
    assert world.heketi_requests() == before


def test_repair_ignores_pvs_not_bound_or_not_ours(world: World) -> None:
    gluster, _, _, pv = provisioned(world)
    world.kube.delete("endpoints", pv["spec"]["glusterfs"]["endpoints"], NAMESPACE)
    foreign = bound(pv)
    foreign["metadata"] = {
        **pv["metadata"],
        "annotations": {**pv["metadata"]["annotations"], ANN_PROVISIONED_BY: "other"},
    }
    assert gluster.repair(pv) is False  # no status: not Bound
    assert gluster.repair(foreign) is False
    assert endpoints_of(world, pv) == ["services"]


class _Answer404(BaseHTTPRequestHandler):
    """A proxy or a wrong server: every path is "not found", in its own words."""

    body = b"404 page not found\n"

    def _answer(self) -> None:
        self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_DELETE = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize(
    "body", [b"404 page not found\n", b"<html><body>Not Found</body></html>", b""]
)
def test_a_404_that_is_not_heketis_own_keeps_the_pv_and_the_volume(
    world: World, body: bytes
) -> None:
    """A PV whose resturl reaches something other than Heketi's volume handler (a
    proxy's page, Go's router "404 page not found" for a wrong path prefix) answers
    404. Counting that as "already gone" would delete the PV and leak its volume and
    GID; it must be an error, retried."""
    from provisioner.gluster.annotations import ANN_RESTURL

    gluster = world.provisioner()
    sc = world.storage_class()
    pv = gluster.provision(world.claim(sc), sc)
    handler = type("Handler", (_Answer404,), {"body": body})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pv["metadata"]["annotations"][ANN_RESTURL] = f"http://127.0.0.1:{server.server_port}"
        with pytest.raises(ProvisionError) as caught:
            gluster.delete(pv)
    finally:
        server.shutdown()
        server.server_close()
    assert caught.value.outcome is Outcome.RETRY
    assert len(world.sim.volumes()) == 1
    gid = int(pv["metadata"]["annotations"][ANN_GID])
    assert gluster.ledger.gids.is_used(sc["metadata"]["name"], gid)

"""Many claims at once, and a controller replaced while work is in flight."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from provisioner.gluster.annotations import ANN_GID, ANN_HEKETI_VOLUME_ID

if TYPE_CHECKING:
    from conftest import Cluster


def test_fifty_concurrent_claims(cluster: Cluster) -> None:
    sc = cluster.storage_class()
    claims = [cluster.claim(sc) for _ in range(50)]

    pvs = [cluster.bound_pv(c, timeout=60) for c in claims]

    gids = [pv["metadata"]["annotations"][ANN_GID] for pv in pvs]
    assert len(set(gids)) == 50
    assert sorted(int(g) for g in gids) == list(range(2000, 2050))
    names = Counter(v["name"] for v in cluster.sim.volumes())
    assert sorted(names) == sorted(f"pvc-{c['metadata']['uid']}" for c in claims)
    assert set(names.values()) == {1}
    counts = cluster.heketi_counts()
    assert counts["POST /volumes 202"] == 50
    assert not any(k.endswith(" 429") for k in counts)  # never above Heketi's limit
    print(f"\n[figures] 50 claims: Heketi requests {dict(counts)}")


def test_controller_restart_mid_flight(cluster_factory: Any) -> None:
    """Old process stops with creates in flight; the new one finishes without duplicates.

    Four workers and a 2 s create latency make "mid-flight" certain rather than likely:
    when the stop begins, at most four claims have been taken from the queue and none
    can have finished, so at least eight are left for the new process.
    """
    cluster = cluster_factory(with_controller=False)
    cluster.start_controller(workers=4)
    cluster.sim.set_latency({"volume_create": 2.0})
    sc = cluster.storage_class()
    claims = [cluster.claim(sc) for _ in range(12)]
    cluster.wait_for(
        lambda: cluster.heketi_counts()["POST /volumes 202"] >= 2, what="creates in flight"
    )
    cluster.stop_controller(grace=10.0)  # in-flight items finish, queued ones never start
    gids_before = {
        pv["metadata"]["name"]: pv["metadata"]["annotations"][ANN_GID]
        for pv in cluster.sandbox.list_objects("persistentvolumes")
    }
    assert 2 <= len(gids_before) <= 4
    cluster.sim.set_latency(0.0)

    cluster.start_controller()
    pvs = [cluster.bound_pv(c, timeout=60) for c in claims]

    names = Counter(v["name"] for v in cluster.sim.volumes())
    assert len(names) == 12 and set(names.values()) == {1}
    gids = {pv["metadata"]["name"]: pv["metadata"]["annotations"][ANN_GID] for pv in pvs}
    assert len(set(gids.values())) == 12
    assert {name: gids[name] for name in gids_before} == gids_before
    by_id = {v["id"]: v for v in cluster.sim.volumes()}
    for pv in pvs:
        volume = by_id[pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID]]
        assert str(volume["gid"]) == pv["metadata"]["annotations"][ANN_GID]


def test_restart_after_volumes_were_made_but_no_pv_was_written(cluster: Cluster) -> None:
    """The old process created the Heketi volumes and died before writing any PV."""
    cluster.sandbox.faults.fail_next_writes(
        "persistentvolumes", count=1000, status=503, message="injected", verbs={"create"}
    )
    sc = cluster.storage_class()
    claims = [cluster.claim(sc) for _ in range(5)]
    cluster.wait_for(lambda: len(cluster.sim.volumes()) == 5, what="five Heketi volumes")
    cluster.stop_controller(grace=10.0)
    cluster.sandbox.faults.clear()
    made = {v["name"]: v for v in cluster.sim.volumes()}
    cluster.sim.reset_requests()

    cluster.start_controller()
    pvs = [cluster.bound_pv(c, timeout=30) for c in claims]

    assert {v["name"] for v in cluster.sim.volumes()} == set(made)
    assert "POST /volumes 202" not in cluster.heketi_counts()
    for pv in pvs:
        volume = made[pv["spec"]["glusterfs"]["path"]]
        assert pv["metadata"]["annotations"][ANN_GID] == str(volume["gid"])
        assert pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID] == volume["id"]
    # A new claim after the restart does not reuse any of the five gids.
    fresh = cluster.bound_pv(cluster.claim(sc))
    assert int(fresh["metadata"]["annotations"][ANN_GID]) not in {v["gid"] for v in made.values()}

"""The leak the orphan sweep closes, end to end: a process dies between the Heketi create
and the PV write, and the claim is deleted while no process runs. The sweep starts
from the intent record written in the controller's namespace before the create."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from heketi_client import HeketiClient, VolumeCreateRequest
from provisioner.audit.compare import run_audit
from provisioner.controller.loop import Controller

if TYPE_CHECKING:
    from conftest import Cluster

PROVISIONER = "gluster.org/heketi"
ADMIN_KEY = "e2e-admin-key-0123456789abcdef"  # as in conftest.py


def start_sweeping_controller(cluster: Cluster, *, period: float, grace: float) -> Controller:
    """As ``Cluster.start_controller``, sweeping every ``period`` with that grace."""
    return cluster.start_controller(orphan_sweep_period=period, orphan_grace_seconds=grace)


def test_a_volume_left_by_a_killed_process_is_reclaimed(cluster_factory: Any) -> None:
    cluster: Cluster = cluster_factory(with_controller=False)
    old = cluster.start_controller()
    sc = cluster.storage_class()
    survivor = cluster.claim(sc)
    survivor_pv = cluster.bound_pv(survivor)

    # Heketi makes the volume; the answer never reaches the old process.
    hold = cluster.sim.faults.hold_next("volume_create", after_effect=True)
    doomed = cluster.claim(sc)
    name = f"pvc-{doomed['metadata']['uid']}"
    assert hold.wait_reached(20.0)
    cluster.wait_for(lambda: name in cluster.volume_names(), what="the Heketi volume")
    cluster.stop_controller(grace=0.1)  # "killed": no PV will ever be written by it
    cluster.delete_claim(doomed)
    cluster.wait_for(lambda: cluster.fresh_claim(doomed) is None, what="the claim to go")
    hold.release(proceed=False)  # the connection closes without an answer
    assert old.queue.wait_idle(20.0)
    assert cluster.get("persistentvolumes", name) is None
    assert name in cluster.volume_names()

    new = start_sweeping_controller(cluster, period=0.2, grace=0.5)
    cluster.wait_for(
        lambda: name not in cluster.volume_names(), timeout=30.0, what="the orphan reclaimed"
    )

    assert cluster.volume_names() == [survivor_pv["spec"]["glusterfs"]["path"]]
    assert cluster.get("persistentvolumes", survivor_pv["metadata"]["name"]) is not None
    cluster.wait_for(
        lambda: new.metrics.orphans_reclaimed_total._value.get() == 1,
        what="the reclaim to be counted",
    )
    report = run_audit(cluster.kube, provisioner_name=PROVISIONER)
    assert report.orphans == ()
    assert report.errors == ()
    assert report.heketi_volumes == 1
    counts = cluster.heketi_counts()
    assert counts["DELETE /volumes/{id} 202"] == 1  # the orphan, nothing else


def test_the_first_sweep_runs_at_start_and_zero_disables_it(cluster_factory: Any) -> None:
    """A record orphaned while no process ran: the sweep at start sees it, and the
    loop comes back once the grace is over rather than a whole period later."""
    cluster: Cluster = cluster_factory(with_controller=False)
    sc = cluster.storage_class()
    doomed = leave_a_crash_orphan(cluster, sc)
    cluster.sim.reset_requests()

    quiet = start_sweeping_controller(cluster, period=0.0, grace=0.0)
    assert quiet.ready()
    assert not any(t.name == "orphan-sweep" for t in quiet._threads)
    assert cluster.heketi_counts() == {}
    cluster.stop_controller()

    sweeping = start_sweeping_controller(cluster, period=600.0, grace=0.3)
    cluster.wait_for(lambda: doomed not in cluster.volume_names(), what="the orphan reclaimed")
    assert any(t.name == "orphan-sweep" for t in sweeping._threads)


def test_another_clusters_volume_named_like_ours_is_never_deleted(cluster_factory: Any) -> None:
    """One Heketi serves two Kubernetes clusters: the other one's ``pvc-<uid>`` volume
    has no intent record in our API server, so it is not ours to reclaim."""
    cluster: Cluster = cluster_factory(with_controller=False)
    sc = cluster.storage_class()
    foreign = f"pvc-{uuid.uuid4()}"
    HeketiClient(cluster.sim.url, user="admin", key=ADMIN_KEY).create_volume(
        VolumeCreateRequest(size=1, name=foreign)
    )
    doomed = leave_a_crash_orphan(cluster, sc)

    new = start_sweeping_controller(cluster, period=0.2, grace=0.0)
    cluster.wait_for(lambda: doomed not in cluster.volume_names(), what="our orphan reclaimed")
    cluster.wait_for(
        lambda: new.metrics.orphans_reclaimed_total._value.get() == 1, what="the count"
    )

    assert cluster.volume_names() == [foreign]
    assert cluster.heketi_counts()["DELETE /volumes/{id} 202"] == 1


def test_a_pending_claim_deleted_while_running_loses_its_record_soon(
    cluster_factory: Any,
) -> None:
    """Heketi keeps failing the create; the claim goes. Its intent record and its GID
    are cleaned up after the grace, not a whole sweep period later."""
    cluster: Cluster = cluster_factory(with_controller=False)
    sc = cluster.storage_class()
    start_sweeping_controller(cluster, period=600.0, grace=0.3)
    cluster.sim.faults.fail_async_next("volume_create", count=1000, text="brick mount failed")
    claim = cluster.claim(sc)
    record = f"heketi-intent-{claim['metadata']['uid']}"
    cluster.warning(claim)
    assert cluster.get("configmaps", record, "default") is not None

    cluster.delete_claim(claim)

    cluster.wait_for(
        lambda: cluster.get("configmaps", record, "default") is None, what="the record removed"
    )
    cluster.sim.faults.clear()
    assert cluster.volume_names() == []


def leave_a_crash_orphan(cluster: Cluster, sc: str) -> str:
    """A process makes the volume, is stopped before the PV, and the claim is deleted
    while no process runs; returns the volume name."""
    old = cluster.start_controller()
    hold = cluster.sim.faults.hold_next("volume_create", after_effect=True)
    doomed = cluster.claim(sc)
    name = f"pvc-{doomed['metadata']['uid']}"
    assert hold.wait_reached(20.0)
    cluster.wait_for(lambda: name in cluster.volume_names(), what="the Heketi volume")
    cluster.stop_controller(grace=0.1)
    cluster.delete_claim(doomed)
    cluster.wait_for(lambda: cluster.fresh_claim(doomed) is None, what="the claim to go")
    hold.release(proceed=False)
    assert old.queue.wait_idle(20.0)
    return name

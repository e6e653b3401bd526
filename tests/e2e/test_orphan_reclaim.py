"""The leak the orphan sweep closes, end to end: a process dies between the Heketi create
and the PV write, and the claim is deleted while no process runs."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from provisioner.audit import run_audit
from provisioner.controller import Caches, Controller
from provisioner.gluster import GlusterProvisioner
from provisioner.kubeapi import KubeAPI, load_api_client

if TYPE_CHECKING:
    from conftest import Cluster

PROVISIONER = "gluster.org/heketi"


def start_sweeping_controller(cluster: Cluster, *, period: float, grace: float) -> Controller:
    """As ``Cluster.start_controller``, with the grace handed to the provisioner too."""
    settings = replace(cluster.settings, orphan_sweep_period=period, orphan_grace_seconds=grace)
    kube = KubeAPI(load_api_client(cluster.stack.kubeconfig_path))
    caches = Caches(kube, settings)
    gluster = GlusterProvisioner(
        kube=kube,
        provisioner_name=settings.provisioner_name,
        class_lookup=caches.storage_class,
        heketi_concurrency=settings.heketi_concurrency,
        orphan_grace_seconds=settings.orphan_grace_seconds,
    )
    cluster.controller = Controller(kube, gluster, settings, caches=caches)
    cluster.controller.start()
    return cluster.controller


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
    cluster: Cluster = cluster_factory(with_controller=False)
    cluster.storage_class()
    cluster.sim.reset_requests()
    sweeping = start_sweeping_controller(cluster, period=600.0, grace=60.0)
    cluster.wait_for(
        lambda: cluster.heketi_counts() == {"GET /volumes 200": 1}, what="the first sweep"
    )
    cluster.stop_controller()
    assert any(t.name == "orphan-sweep" for t in sweeping._threads)
    cluster.sim.reset_requests()

    quiet = start_sweeping_controller(cluster, period=0.0, grace=60.0)

    assert quiet.ready()
    assert not any(t.name == "orphan-sweep" for t in quiet._threads)
    assert cluster.heketi_counts() == {}

"""A standby keeps warm caches: its informers follow the API server before it leads,
and only workers and writes wait for leadership (issue 18)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from provisioner.app import build_controller
from provisioner.k8s.kubeapi import USER_AGENT

from .conftest import Cluster

WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def _controller_writes(cluster: Cluster) -> list[Any]:
    """Writes with our user agent, but the test's own claims (its client has it too)."""
    return [
        r
        for r in cluster.sandbox.request_log
        if r.verb in WRITES
        and r.user_agent == USER_AGENT
        and r.resource != "persistentvolumeclaims"
    ]


def test_a_standby_fills_its_caches_and_writes_nothing_until_it_starts(
    cluster_factory: Any,
) -> None:
    cluster: Cluster = cluster_factory(with_controller=False)
    sc = cluster.storage_class()
    claim = cluster.claim(sc)
    cluster.sandbox.clear_request_log()
    standby = build_controller(replace(cluster.settings, kubeconfig=cluster.stack.kubeconfig_path))
    try:
        standby.warm(sync_timeout=20)
        # Caches follow the server (the claim made before, and one made now)...
        later = cluster.claim(sc)
        key = f"{later['metadata']['namespace']}/{later['metadata']['name']}"
        assert cluster.wait_for(lambda: standby.claims.get(key) is not None, 10, "watch")
        assert all(informer.has_synced() for informer in standby.caches.all())
        # ...the claims are queued for later, but nothing is provisioned or written.
        assert len(standby.queue) >= 2
        assert _controller_writes(cluster) == []
        assert cluster.fresh_claim(claim)["spec"].get("volumeName") is None
        assert not standby.ready()
        assert standby.problems() == []
        informer = standby.caches.pvs
        alive = informer.alive
        informer.alive = lambda: False  # type: ignore[method-assign]
        assert standby.problems() == ["informer persistentvolumes: watch thread ended"]
        informer.alive = alive  # type: ignore[method-assign]

        watches = {i.resource: i.watches for i in standby.caches.all()}
        standby.start(sync_timeout=20)  # leadership: workers only, no new list
        assert {i.resource: i.watches for i in standby.caches.all()} == watches
        assert all(i.relists == 1 for i in standby.caches.all())
        cluster.bound_pv(claim)
        cluster.bound_pv(later)
    finally:
        standby.stop(grace=1.0)

"""What makes a start next to many bound volumes cheap, proven on a small scale.

Bound volumes of ours whose Endpoints and Service exist need nothing: their keys must
never reach a worker (at 10,000 they would queue in front of the next new claim). The
filter must still let real work through: a deleted Endpoints sends its volume to a
worker.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.app import build_controller
from provisioner.config import Settings
from provisioner.controller.loop import Controller
from provisioner.sandbox.waiting import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from fixtures import NAMESPACE, BoundSet, Servers, claim_body, preload_bound, start_test_bed


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Servers]:
    bed = start_test_bed(tmp_path, volumes=10, latency=0.0, max_inflight=8)
    yield bed
    bed.stop()


def count_volume_syncs(ctl: Controller, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the PVs a worker is asked to sync, from now on."""
    seen: list[str] = []
    real = ctl.volume_sync.sync

    def counting(name: str) -> None:
        seen.append(name)
        real(name)

    monkeypatch.setattr(ctl.volume_sync, "sync", counting)
    return seen


def test_bound_volumes_reach_no_worker_and_repairs_still_happen(
    bed: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    bound: BoundSet = preload_bound(bed, 50)
    preloaded = {pv["metadata"]["name"] for pv in bound.volumes}
    settings = Settings(kubeconfig=bed.kube.kubeconfig_path, metrics_address="", workers=4)
    ctl = build_controller(settings)
    synced_volumes = count_volume_syncs(ctl, monkeypatch)
    ctl.start()
    try:
        # The work queue is FIFO: once a claim created after the start is Bound,
        # every key queued at the start has been handed to a worker.
        bed.kube.create_object("persistentvolumeclaims", claim_body("after-start"), NAMESPACE)

        def is_bound() -> bool:
            claim = bed.kube.get_object("persistentvolumeclaims", NAMESPACE, "after-start")
            return ((claim or {}).get("status") or {}).get("phase") == "Bound"

        wait_for(is_bound)
        assert not preloaded & set(synced_volumes)

        # A deleted Endpoints makes its volume worth a worker's time again. (The
        # repair itself is the e2e tests' business: these PVs' Heketi volumes are
        # not real, so here it would only fail and retry.)
        ctl.kube.delete("endpoints", bound.endpoints[0]["metadata"]["name"], NAMESPACE)
        wait_for(lambda: bound.volumes[0]["metadata"]["name"] in synced_volumes)
    finally:
        ctl.stop(grace=5.0)

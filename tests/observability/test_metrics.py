"""Every metric, read the way Prometheus reads it: from ``/metrics`` of a running controller."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn, cast

import pytest
from prometheus_client.parser import text_string_to_metric_families

from provisioner.app import leader_elector

if TYPE_CHECKING:
    from conftest import World

ADMIN_KEY = "observability-admin-key-0123456789"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def label_values(text: str) -> set[str]:
    return {v for (_, labels) in samples(text) for _, v in labels}


def test_heketi_requests_claim_bound_and_provision_metrics(world: World) -> None:
    controller = world.build()
    controller.start()
    sc = world.storage_class()
    claim = world.claim(sc)
    pv = world.bound_pv(claim)

    bound_count = "heketi_provisioner_claim_bound_seconds_count"
    world.wait_for(
        lambda: (
            value(world.metrics(), bound_count, **{"class": sc}) == 1
            and value(
                world.metrics(),
                "controller_persistentvolumeclaim_provision_total",
                **{"class": sc, "source": ""},
            )
            == 1
        ),
        what="the claim-to-Bound latency and the provision to be observed",
    )
    text = world.metrics()
    assert value(text, "heketi_provisioner_heketi_requests_total", operation="POST /volumes",
                 status="202") == 1  # fmt: skip
    assert value(text, "heketi_provisioner_heketi_requests_total", operation="GET /queue/{id}",
                 status="303") == 1  # fmt: skip
    assert value(text, "heketi_provisioner_heketi_requests_total", operation="GET /volumes/{id}",
                 status="200") >= 1  # fmt: skip
    assert value(text, "heketi_provisioner_heketi_request_duration_seconds_count",
                 operation="POST /volumes") == 1  # fmt: skip
    labels = {"class": sc, "source": ""}
    assert value(text, "controller_persistentvolumeclaim_provision_total", **labels) == 1
    assert value(text, "controller_persistentvolumeclaim_provision_duration_seconds_count",
                 **labels) == 1  # fmt: skip
    # Observed once per claim: a resync re-examines the bound claim, the count stays.
    controller.resync()
    assert controller.bind_timer.pending() == 0
    assert value(world.metrics(), "heketi_provisioner_claim_bound_seconds_count",
                 **{"class": sc}) == 1  # fmt: skip

    world.delete_claim_and_wait(claim, pv)
    # The worker records the delete after the PV object is gone: wait for it.
    world.wait_for(
        lambda: (
            value(world.metrics(), "controller_persistentvolume_delete_total", **{"class": sc}) == 1
        ),
        what="the delete to be counted",
    )

    text = world.metrics()
    assert value(text, "heketi_provisioner_heketi_requests_total",
                 operation="DELETE /volumes/{id}", status="202") == 1  # fmt: skip
    assert value(text, "controller_persistentvolume_delete_total", **{"class": sc}) == 1
    assert value(text, "controller_persistentvolume_delete_duration_seconds_count",
                 **{"class": sc}) == 1  # fmt: skip


def test_no_label_value_carries_a_key_a_url_or_an_id(world: World) -> None:
    controller = world.build()
    controller.start()
    sc = world.storage_class()
    world.bound_pv(world.claim(sc))
    # And a claim whose Heketi refuses connections: the "no answer" label too.
    bad = world.storage_class(resturl="http://127.0.0.1:9")
    world.claim(bad)
    world.wait_for(
        lambda: 'status="error"' in world.metrics(),
        what="the refused request to be counted",
    )

    values = label_values(world.metrics())
    assert values, "no labelled sample: the check below would prove nothing"
    for text in values:
        assert ADMIN_KEY not in text
        assert "://" not in text and "@" not in text
        assert not re.search(r"[0-9a-f]{32}", text), text


def test_queue_depth_and_retries_are_exported(world: World) -> None:
    world.build().start()
    text = world.metrics()
    assert value(text, "heketi_provisioner_workqueue_depth") is not None
    assert value(text, "heketi_provisioner_workqueue_retries_total") is not None


def test_leader_gauge_follows_the_elector_callbacks(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "default")
    controller = world.build()
    stop, lost = threading.Event(), threading.Event()
    exits: list[int] = []  # a lost lease must fail this test, not end pytest (os._exit)
    exit_hard = cast("Callable[[int], NoReturn]", exits.append)
    elector = leader_elector(controller, world.settings, stop, lost, exit_hard=exit_hard)
    assert value(world.metrics(), "heketi_provisioner_leader") == 0

    elector.start()
    world.wait_for(lambda: value(world.metrics(), "heketi_provisioner_leader") == 1,
                   what="the gauge to say leading")  # fmt: skip
    world.wait_for(controller.ready, what="the controller started by the elector")
    assert elector.release()

    assert value(world.metrics(), "heketi_provisioner_leader") == 0
    assert stop.is_set()
    assert exits == [] and not lost.is_set()  # released, not lost

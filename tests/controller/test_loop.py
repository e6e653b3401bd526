"""The controller loop against a stub backend, on a fake clock (``tests.fakeloop``).

Every backoff is a number: "retried after 1 s, then 2 s" is checked by moving the
clock, not by sleeping. What the loop does with each outcome of a failed attempt is
one table; the happy paths, the gate and repair are the rows around it.
"""

from __future__ import annotations

from typing import Any

import pytest

from provisioner.controller.contract import InvalidInput, Outcome, ProvisionError, pv_name
from provisioner.k8s.versions import ServerVersion
from tests.fakeloop import NAMESPACE, Loop, RepairingBackend, StubBackend

RETRY = ProvisionError("Heketi is unreachable")
WAIT = InvalidInput('StorageClass parameter "volumetype": unknown type "raid5"')
GIVE_UP = ProvisionError("the API server refused it", outcome=Outcome.WAIT_FOR_CHANGE)


def provision_total(loop: Loop) -> float:
    value = loop.controller.metrics.registry.get_sample_value(
        "controller_persistentvolumeclaim_provision_total", {"class": "gold", "source": ""}
    )
    return value or 0.0


def test_a_claim_is_provisioned_and_its_pv_written() -> None:
    loop = Loop(StubBackend())
    loop.storage_class()
    claim = loop.claim()

    assert loop.run() == [("claim", f"{NAMESPACE}/data")]
    assert loop.backend.provisioned == ["data"]
    pv = loop.pvs.get(pv_name(claim["metadata"]["uid"]))
    assert pv is not None and pv["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert loop.kube.reasons() == [
        ("Normal", "Provisioning"),
        ("Normal", "ProvisioningSucceeded"),
    ]
    assert provision_total(loop) == 1
    assert loop.advance(3600) == []  # nothing left to do, however long
    assert loop.backend.provisioned == ["data"]


@pytest.mark.parametrize(
    ("claim", "the_class"),
    [
        ({"volumeName": "pvc-static"}, {}),  # bound already
        ({}, {"provisioner": "someone.else/x"}),  # another provisioner's class
        ({}, {"volumeBindingMode": "WaitForFirstConsumer"}),  # no node chosen yet
    ],
    ids=["bound", "not-ours", "wait-for-consumer"],
)
def test_claims_that_are_not_ours_to_provision_are_left_alone(
    claim: dict[str, Any], the_class: dict[str, Any]
) -> None:
    loop = Loop(StubBackend())
    loop.storage_class(**the_class)
    loop.claim(**claim)
    loop.run()
    assert loop.backend.provisioned == []
    assert loop.kube.events == []


@pytest.mark.parametrize(
    ("answers", "timeline", "change"),
    [
        # RETRY: requeued after the backoff (base 1 s) and not a moment before.
        ([RETRY, None], [(0.0, 1), (0.99, 1), (0.01, 2)], None),
        # The backoff doubles: 1 s, then 2 s.
        ([RETRY, RETRY, None], [(0.0, 1), (1.0, 2), (1.99, 2), (0.01, 3)], None),
        # It is capped (settings: 8 s): 1, 2, 4, 8, 8.
        ([RETRY] * 5 + [None], [(0.0, 1), (1.0, 2), (2.0, 3), (4.0, 4), (8.0, 5), (8.0, 6)], None),
        # WAIT_FOR_CHANGE: no retry however long, until the class changes ...
        ([WAIT, None], [(0.0, 1), (3600.0, 1)], "class"),
        # ... or the claim does.
        ([WAIT, None], [(0.0, 1), (3600.0, 1)], "claim"),
        ([GIVE_UP, None], [(0.0, 1), (3600.0, 1)], "class"),
    ],
    ids=["retry", "retry-doubles", "retry-capped", "wait-class", "wait-claim", "give-up"],
)
def test_what_follows_a_failed_attempt(
    answers: list[ProvisionError | None],
    timeline: list[tuple[float, int]],
    change: str | None,
) -> None:
    loop = Loop(StubBackend(provision=answers))
    loop.storage_class()
    claim = loop.claim()
    for seconds, calls in timeline:
        loop.advance(seconds)
        assert len(loop.backend.provisioned) == calls, (seconds, calls)
    if change == "class":
        loop.storage_class(parameters={"volumetype": "replicate:3"})
    elif change == "claim":
        loop.claim(resources={"requests": {"storage": "2Gi"}})
    loop.run()

    assert len(loop.backend.provisioned) == len(answers)
    assert loop.pvs.get(pv_name(claim["metadata"]["uid"])) is not None
    # One Warning per message, however often it failed with it.
    failed = [r for r in loop.kube.reasons() if r[1] == "ProvisioningFailed"]
    assert failed == [("Warning", "ProvisioningFailed")]
    assert loop.controller.queue.num_requeues(("claim", f"{NAMESPACE}/data")) == 0


def test_a_resync_tries_a_waiting_claim_again_quietly() -> None:
    """A Secret may have been fixed outside the claim and its class."""
    loop = Loop(StubBackend(provision=[WAIT, WAIT, None]))
    loop.storage_class()
    loop.claim()
    loop.run()
    loop.controller.resync()
    loop.run()
    assert len(loop.backend.provisioned) == 2
    assert [r for r in loop.kube.reasons() if r[1] == "ProvisioningFailed"] == [
        ("Warning", "ProvisioningFailed")
    ]
    loop.controller.resync()
    loop.run()
    assert len(loop.backend.provisioned) == 3
    assert ("Normal", "ProvisioningSucceeded") in loop.kube.reasons()


def test_a_pv_the_api_server_refuses_is_cleaned_up_and_not_retried() -> None:
    loop = Loop(StubBackend())
    loop.kube.fail_pv_create = 422
    loop.storage_class()
    claim = loop.claim()
    loop.run()
    assert loop.backend.deleted == [pv_name(claim["metadata"]["uid"])]
    assert loop.advance(3600) == []
    assert loop.backend.provisioned == ["data"]


@pytest.mark.parametrize(
    ("answers", "timeline"),
    [
        ([None], [(0.0, 1)]),
        # A failed delete is retried with backoff whatever its outcome: the PV and our
        # finalizer stay until the backend is gone.
        ([RETRY, None], [(0.0, 1), (0.99, 1), (0.01, 2)]),
        ([GIVE_UP, GIVE_UP, None], [(0.0, 1), (1.0, 2), (2.0, 3)]),
    ],
    ids=["deleted", "retried", "retried-whatever-the-outcome"],
)
def test_a_released_pv_is_deleted_with_its_backend(
    answers: list[ProvisionError | None], timeline: list[tuple[float, int]]
) -> None:
    loop = Loop(StubBackend(delete=answers))
    loop.storage_class()
    claim = loop.claim()
    loop.run()
    bound = loop.bind(claim)
    loop.run()
    volume = pv_name(claim["metadata"]["uid"])

    loop.delete_claim(bound)
    for seconds, calls in timeline:
        loop.advance(seconds)
        assert len(loop.backend.deleted) == calls, (seconds, calls)

    assert loop.pvs.get(volume) is None  # finalizer removed, PV deleted
    failures = [r for r in loop.kube.reasons() if r[1] == "VolumeFailedDelete"]
    assert failures == ([("Warning", "VolumeFailedDelete")] if len(answers) > 1 else [])
    assert loop.advance(3600) == []
    assert loop.backend.deleted == [volume] * len(answers)


def test_a_retained_pv_keeps_its_backend() -> None:
    loop = Loop(StubBackend())
    loop.storage_class(reclaimPolicy="Retain")
    claim = loop.claim()
    loop.run()
    loop.delete_claim(loop.bind(claim))
    loop.run()
    assert loop.backend.deleted == []
    assert loop.pvs.get(pv_name(claim["metadata"]["uid"])) is not None


class GatedBackend(StubBackend):
    def gate(self, storage_class: dict[str, Any], server: ServerVersion) -> str | None:
        return None if server.release <= (1, 25) else f"not on {server.git_version}"


@pytest.mark.parametrize(("version", "gated"), [("v1.25.16", False), ("v1.30.2", True)])
def test_a_closed_gate_warns_each_claim_once_and_provisions_nothing(
    version: str, gated: bool
) -> None:
    backend = GatedBackend()
    loop = Loop(backend, version=version)
    loop.storage_class()
    loop.claim()
    loop.run()
    for _ in range(3):
        loop.controller.resync()
        loop.run()

    if gated:
        assert backend.provisioned == []
        assert loop.kube.reasons() == [("Warning", "ProvisioningFailed")]
        assert loop.kube.events[0]["message"] == f"not on {version}"
    else:
        assert backend.provisioned == ["data"]


def test_a_deleted_watched_object_sends_its_bound_pv_to_repair() -> None:
    backend = RepairingBackend()
    loop = Loop(backend)
    (watched,) = loop.caches.watched.informers
    loop.storage_class()
    claim = loop.claim()
    loop.run()
    watched.put({"metadata": {"name": "beside-data", "namespace": NAMESPACE}})
    loop.bind(claim)
    loop.run()
    assert backend.repaired == []  # everything there: no worker even looks

    watched.remove(f"{NAMESPACE}/beside-data")
    assert loop.run() == [("volume", pv_name(claim["metadata"]["uid"]))]
    assert backend.repaired == [pv_name(claim["metadata"]["uid"])]
    assert loop.controller.metrics.repairs_total._value.get() == 1

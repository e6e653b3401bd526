"""Who leads: acquisition, exclusivity, hand-over on release and on expiry."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest

from provisioner.k8s.kubeapi import KubeAPI, load_api_client
from provisioner.k8s.leader import LeaderElector
from provisioner.k8s.leases import holder_identity, lease_name, micro_time
from provisioner.sandbox.kube import KubeSandbox

from .conftest import LEASE, NAMESPACE, WAIT, Electors, LeaseWrites, lease

MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def test_micro_time_format() -> None:
    moment = datetime(2026, 11, 21, 23, 40, tzinfo=timezone.utc)
    assert micro_time(moment) == "2026-11-21T23:40:00.000000Z"
    assert MICRO_TIME.fullmatch(micro_time())


@pytest.mark.parametrize(
    ("duration", "deadline", "period"),
    [(15.0, 15.0, 2.0), (15.0, 10.0, 10.0), (15.0, 10.0, 0.0), (5.0, 10.0, 2.0)],
)
def test_inconsistent_durations_are_refused(
    sandbox: KubeSandbox, duration: float, deadline: float, period: float
) -> None:
    with pytest.raises(ValueError, match="retry_period < renew_deadline < lease_duration"):
        LeaderElector(
            KubeAPI(load_api_client(sandbox.kubeconfig_path)),
            namespace=NAMESPACE,
            name=LEASE,
            identity="a",
            lease_duration=duration,
            renew_deadline=deadline,
            retry_period=period,
            on_started_leading=lambda: None,
            on_stopped_leading=lambda: None,
        )


def test_first_candidate_creates_the_lease(sandbox: KubeSandbox, electors: Electors) -> None:
    elector, calls = electors.make("replica-a")
    assert calls.until(lambda: "started" in calls.calls)
    assert elector.is_leader()
    spec = lease(sandbox)["spec"]
    assert spec["holderIdentity"] == "replica-a"
    assert spec["leaseDurationSeconds"] == 2
    assert spec["leaseTransitions"] == 0
    assert MICRO_TIME.fullmatch(spec["acquireTime"])
    assert MICRO_TIME.fullmatch(spec["renewTime"])


def test_leader_keeps_renewing(
    sandbox: KubeSandbox, electors: Electors, writes: LeaseWrites
) -> None:
    _, calls = electors.make("replica-a")
    assert calls.until(lambda: "started" in calls.calls)
    first = lease(sandbox)["spec"]
    assert writes.until(lambda: writes.renewals_by("replica-a") >= 5)
    latest = lease(sandbox)["spec"]
    assert latest["acquireTime"] == first["acquireTime"]  # a renewal is not an acquisition
    assert latest["renewTime"] != first["renewTime"]
    assert latest["leaseTransitions"] == 0
    assert calls.calls == ["started"]


def test_two_candidates_exactly_one_leads(
    sandbox: KubeSandbox, electors: Electors, writes: LeaseWrites
) -> None:
    a, a_calls = electors.make("replica-a")
    b, b_calls = electors.make("replica-b")
    assert writes.until(lambda: a.is_leader() or b.is_leader())
    leader, follower = (a, b) if a.is_leader() else (b, a)
    follower_calls = b_calls if follower is b else a_calls
    seen = writes.renewals_by(leader.identity)
    # Many renewals, i.e. many lease durations' worth of the follower retrying.
    assert writes.until(lambda: writes.renewals_by(leader.identity) >= seen + 15)
    assert leader.is_leader()
    assert not follower.is_leader()
    assert follower_calls.calls == []
    assert lease(sandbox)["spec"]["holderIdentity"] == leader.identity
    assert follower.holder() == leader.identity
    assert {v["holderIdentity"] for v in writes.versions} == {leader.identity}


def test_released_lease_is_taken_over_at_once(
    sandbox: KubeSandbox, electors: Electors, writes: LeaseWrites
) -> None:
    # A lease duration far beyond the wait: the standby can only get in through release.
    slow: dict[str, Any] = {"lease_duration": 120.0, "renew_deadline": 60.0, "retry_period": 0.1}
    a, a_calls = electors.make("replica-a", **slow)
    assert a_calls.until(lambda: a.is_leader())
    b, b_calls = electors.make("replica-b", **slow)
    assert writes.until(lambda: writes.renewals_by("replica-a") >= 3)

    assert a.release() is True
    assert a_calls.calls == ["started", "stopped"]
    assert not a.is_leader()
    assert b_calls.until(lambda: "started" in b_calls.calls)
    assert b.is_leader()
    holders = [v["holderIdentity"] for v in writes.versions]
    assert "" in holders  # the release itself was written
    assert holders.index("") < holders.index("replica-b")
    spec = lease(sandbox)["spec"]
    assert spec["holderIdentity"] == "replica-b"
    assert spec["leaseTransitions"] == 1
    assert spec["leaseDurationSeconds"] == 120


def test_release_of_a_lease_never_held_writes_nothing(
    sandbox: KubeSandbox, electors: Electors, writes: LeaseWrites
) -> None:
    a, a_calls = electors.make("replica-a")
    assert a_calls.until(lambda: a.is_leader())
    b, b_calls = electors.make("replica-b")
    before = writes.count()
    assert b.release() is False
    assert b_calls.calls == []
    assert lease(sandbox)["spec"]["holderIdentity"] == "replica-a"
    assert all(v["holderIdentity"] == "replica-a" for v in writes.versions[before:])


def test_silent_leader_is_replaced_after_the_lease_expires(
    sandbox: KubeSandbox, electors: Electors, writes: LeaseWrites
) -> None:
    a, a_calls = electors.make("replica-a")
    assert a_calls.until(lambda: a.is_leader())
    b, b_calls = electors.make("replica-b")
    assert writes.until(lambda: writes.renewals_by("replica-a") >= 3)

    a.stop()  # no release: the lease stays A's until it expires
    assert a_calls.calls == ["started", "stopped"]
    assert b_calls.until(lambda: "started" in b_calls.calls)
    assert b.is_leader() and not a.is_leader()
    assert "" not in [v["holderIdentity"] for v in writes.versions]
    spec = lease(sandbox)["spec"]
    assert spec["holderIdentity"] == "replica-b"
    assert spec["leaseTransitions"] == 1


def test_stale_lease_of_a_dead_process_is_taken_over(
    sandbox: KubeSandbox, electors: Electors
) -> None:
    kube = electors.api()
    stale = micro_time(datetime(2020, 1, 1, tzinfo=timezone.utc))
    kube.create(
        "leases",
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE, "namespace": NAMESPACE},
            "spec": {
                "holderIdentity": "gone-replica",
                "leaseDurationSeconds": 1,
                "acquireTime": stale,
                "renewTime": stale,
                "leaseTransitions": 4,
            },
        },
        NAMESPACE,
    )
    b, b_calls = electors.make("replica-b")
    assert b_calls.until(lambda: b.is_leader())
    assert b_calls.until(lambda: "started" in b_calls.calls)
    spec = lease(sandbox)["spec"]
    assert spec["holderIdentity"] == "replica-b"
    assert spec["leaseTransitions"] == 5
    assert spec["acquireTime"] != stale


def test_stop_is_immediate_even_with_a_long_retry_period(electors: Electors) -> None:
    slow: dict[str, Any] = {"lease_duration": 600.0, "renew_deadline": 500.0, "retry_period": 400.0}
    a, a_calls = electors.make("replica-a", **slow)
    assert a_calls.until(lambda: a.is_leader())
    a.stop(timeout=WAIT)
    assert a._thread is not None and not a._thread.is_alive()
    assert a_calls.calls == ["started", "stopped"]
    assert not a.is_leader()


def test_an_elector_starts_once(electors: Electors) -> None:
    a, _ = electors.make("replica-a")
    with pytest.raises(RuntimeError):
        a.start()


@pytest.mark.parametrize(
    ("provisioner", "expected"),
    [
        ("gluster.org/heketi", "gluster.org-heketi"),
        ("kubernetes.io/glusterfs", "kubernetes.io-glusterfs"),
        ("Example.COM/My_Provisioner", "example.com-my-provisioner"),
    ],
)
def test_lease_name_follows_the_go_library(provisioner: str, expected: str) -> None:
    assert lease_name(provisioner) == expected


def test_lease_name_needs_something_usable() -> None:
    with pytest.raises(ValueError):
        lease_name("//")


def test_holder_identity_is_readable_and_unique() -> None:
    first, second = holder_identity("heketi-provisioner-7c9f-abcde"), holder_identity("x")
    assert first.startswith("heketi-provisioner-7c9f-abcde_")
    assert first != holder_identity("heketi-provisioner-7c9f-abcde")
    assert second.startswith("x_")
    assert holder_identity()  # falls back to the host name

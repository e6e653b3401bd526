"""Who leads: acquisition, exclusivity, hand-over on release and on expiry.

In simulated time with the real durations (lease 15 s, deadline 10 s, retry 2 s),
so "taken over after the lease expired" is checked to the second. One test runs the
elector against the Kubernetes API sandbox, for the Lease object as a server stores it.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

import pytest

from provisioner.k8s.kubeapi import KubeAPI, load_api_client
from provisioner.k8s.leader import LeaderElector
from provisioner.k8s.leases import holder_identity, lease_name, micro_time
from provisioner.sandbox.kube import KubeSandbox
from provisioner.sandbox.waiting import wait_for

from .conftest import WAIT, Electors
from .fakes import LEASE, NAMESPACE, FakeLeaseServer

MICRO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
DURATION, DEADLINE, RETRY = 15.0, 10.0, 2.0  # the elector's defaults


def test_micro_time_format() -> None:
    moment = datetime(2026, 11, 21, 23, 40, tzinfo=timezone.utc)
    assert micro_time(moment) == "2026-11-21T23:40:00.000000Z"
    assert MICRO_TIME.fullmatch(micro_time())


@pytest.mark.parametrize(
    ("duration", "deadline", "period"),
    [(15.0, 15.0, 2.0), (15.0, 10.0, 10.0), (15.0, 10.0, 0.0), (5.0, 10.0, 2.0)],
)
def test_inconsistent_durations_are_refused(
    duration: float, deadline: float, period: float
) -> None:
    with pytest.raises(ValueError, match="retry_period < renew_deadline < lease_duration"):
        LeaderElector(
            KubeAPI(FakeLeaseServer(clock=lambda: 0.0, advance=lambda _s: None)),  # type: ignore[arg-type]
            namespace=NAMESPACE,
            name=LEASE,
            identity="a",
            lease_duration=duration,
            renew_deadline=deadline,
            retry_period=period,
            on_started_leading=lambda: None,
            on_stopped_leading=lambda: None,
        )


def test_first_candidate_creates_the_lease(electors: Electors) -> None:
    elector, calls = electors.make("replica-a")
    assert electors.run_until(lambda: "started" in calls.calls)
    assert calls.at("started") == [0.0]
    assert elector.is_leader()
    spec = electors.lease()["spec"]
    assert spec["holderIdentity"] == "replica-a"
    assert spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0
    assert MICRO_TIME.fullmatch(spec["acquireTime"])
    assert MICRO_TIME.fullmatch(spec["renewTime"])


def test_leader_renews_every_retry_period(electors: Electors) -> None:
    _, calls = electors.make("replica-a")
    assert electors.run_until(lambda: "started" in calls.calls)
    first = dict(electors.lease()["spec"])
    electors.run_for(10 * RETRY + 0.5)
    renewals = [r.sent for r in electors.server.lease_requests() if r.method == "PUT"]
    assert renewals == [pytest.approx(RETRY * n) for n in range(1, 11)]
    latest = electors.lease()["spec"]
    assert latest["acquireTime"] == first["acquireTime"]  # a renewal is not an acquisition
    assert latest["leaseTransitions"] == 0
    assert calls.calls == ["started"]


def test_two_candidates_exactly_one_leads(electors: Electors) -> None:
    a, a_calls = electors.make("replica-a")
    b, b_calls = electors.make("replica-b")
    electors.run_for(20 * DURATION)  # many lease durations of the follower retrying
    leader, follower = (a, b) if a.is_leader() else (b, a)
    assert leader.is_leader() and not follower.is_leader()
    assert sorted([a_calls.calls, b_calls.calls]) == [[], ["started"]]
    assert electors.lease()["spec"]["holderIdentity"] == leader.identity
    assert follower.holder() == leader.identity
    assert {spec["holderIdentity"] for spec in electors.writes()} == {leader.identity}


def test_released_lease_is_taken_over_at_once(electors: Electors) -> None:
    # A lease duration far beyond the test: the standby can only get in through release.
    slow: dict[str, Any] = {"lease_duration": 3600.0, "renew_deadline": 60.0}
    a, a_calls = electors.make("replica-a", **slow)
    assert electors.run_until(lambda: a.is_leader())
    _, b_calls = electors.make("replica-b", **slow)
    electors.run_for(3 * RETRY)

    released_at = electors.clock()
    assert a.release() is True
    assert a_calls.calls == ["started", "stopped"]
    assert not a.is_leader()
    assert electors.run_until(lambda: "started" in b_calls.calls, within=RETRY)
    assert b_calls.at("started")[0] - released_at <= RETRY
    holders = [spec["holderIdentity"] for spec in electors.writes()]
    assert holders.index("") < holders.index("replica-b")  # the release itself was written
    spec = electors.lease()["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("replica-b", 1)
    assert spec["leaseDurationSeconds"] == 3600


def test_release_of_a_lease_never_held_writes_nothing(electors: Electors) -> None:
    a, _ = electors.make("replica-a")
    assert electors.run_until(lambda: a.is_leader())
    b, b_calls = electors.make("replica-b")
    electors.run_for(RETRY)
    before = len(electors.writes())
    assert b.release() is False
    assert b_calls.calls == []
    assert electors.lease()["spec"]["holderIdentity"] == "replica-a"
    assert all(spec["holderIdentity"] == "replica-a" for spec in electors.writes()[before:])


def test_silent_leader_is_replaced_once_the_lease_expires(electors: Electors) -> None:
    a, a_calls = electors.make("replica-a")
    assert electors.run_until(lambda: a.is_leader())
    b, b_calls = electors.make("replica-b")
    electors.run_for(3 * RETRY)

    a.stop()  # no release: the lease stays A's until it expires
    (last_renewal,) = [r.sent for r in electors.server.lease_requests() if r.method == "PUT"][-1:]
    assert a_calls.calls == ["started", "stopped"]
    assert electors.run_until(lambda: "started" in b_calls.calls)
    taken = b_calls.at("started")[0]
    # B counts the expiry from when it first saw A's last renewal, on its own clock:
    # it sees the renewal at its next poll, and takes over at its first poll after.
    assert last_renewal + DURATION <= taken <= last_renewal + DURATION + 2 * RETRY
    assert b.is_leader() and not a.is_leader()
    assert "" not in [spec["holderIdentity"] for spec in electors.writes()]
    spec = electors.lease()["spec"]
    assert (spec["holderIdentity"], spec["leaseTransitions"]) == ("replica-b", 1)


def test_stale_lease_of_a_dead_process_is_taken_over(electors: Electors) -> None:
    stale = micro_time(datetime(2020, 1, 1, tzinfo=timezone.utc))
    electors.api().create(
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
    _, b_calls = electors.make("replica-b")
    assert electors.run_until(lambda: "started" in b_calls.calls)
    # The record's own duration (1 s) counts, from when B first saw it, not renewTime.
    assert 1.0 <= b_calls.at("started")[0] <= 1.0 + RETRY
    spec = electors.lease()["spec"]
    assert spec["holderIdentity"] == "replica-b"
    assert spec["leaseTransitions"] == 5
    assert spec["acquireTime"] != stale


def test_stop_is_immediate_even_with_a_long_retry_period(electors: Electors) -> None:
    slow: dict[str, Any] = {"lease_duration": 600.0, "renew_deadline": 500.0, "retry_period": 400.0}
    a, a_calls = electors.make("replica-a", **slow)
    assert electors.run_until(lambda: a.is_leader())
    a.stop(timeout=WAIT)
    assert not a.running()
    assert a_calls.calls == ["started", "stopped"]
    assert not a.is_leader()


def test_an_elector_starts_once(electors: Electors) -> None:
    a, _ = electors.make("replica-a")
    with pytest.raises(RuntimeError):
        a.start()


def test_against_the_api_sandbox_the_lease_is_stored_and_released() -> None:
    """The Lease as an API server stores it: created, then handed back on release."""
    with KubeSandbox() as sandbox:
        elector = LeaderElector(
            KubeAPI(load_api_client(sandbox.kubeconfig_path)),
            namespace=NAMESPACE,
            name=LEASE,
            identity="replica-a",
            on_started_leading=lambda: None,
            on_stopped_leading=lambda: None,
        )
        elector.start()
        try:
            found = wait_for(lambda: sandbox.get_object("leases", NAMESPACE, LEASE), WAIT, "Lease")
            assert found["spec"]["holderIdentity"] == "replica-a"
            assert found["apiVersion"] == "coordination.k8s.io/v1"
            assert elector.release() is True
        finally:
            elector.stop()
        released = sandbox.get_object("leases", NAMESPACE, LEASE)
        assert released is not None and released["spec"]["holderIdentity"] == ""


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


def test_a_standby_tries_the_moment_the_lease_it_saw_expires(electors: Electors) -> None:
    """Not up to a retry period later: that delay would be added to every takeover.
    The expiry is still counted on the standby's clock, from its first sight of the
    holder's last renewal (never from renewTime)."""
    a, _ = electors.make("replica-a")
    assert electors.run_until(lambda: a.is_leader())
    electors.run_for(0.7)  # B's polls and A's renewals out of phase
    b, b_calls = electors.make("replica-b")
    electors.run_for(3 * RETRY)
    a.stop()
    requests = electors.server.lease_requests()
    last_renewal = [r.sent for r in requests if r.method == "PUT"][-1]
    assert electors.run_until(lambda: "started" in b_calls.calls)
    seen = min(
        r.sent
        for r in electors.server.lease_requests()
        if r.method == "GET" and r.sent > last_renewal
    )
    taken = b_calls.at("started")[0]
    assert seen + DURATION <= taken <= seen + DURATION + 0.01
    assert b.is_leader()


def test_a_watching_standby_sees_each_renewal_without_polling() -> None:
    """``watch=True`` against the API sandbox: the standby notes every renewal of the
    leader as it is written (so its expiry count starts there): only the watch can
    have seen the renewals (its own loop polls every 30 s here)."""
    with KubeSandbox() as sandbox:

        def make(identity: str, **kwargs: Any) -> LeaderElector:
            return LeaderElector(
                KubeAPI(load_api_client(sandbox.kubeconfig_path)),
                namespace=NAMESPACE,
                name=LEASE,
                identity=identity,
                on_started_leading=lambda: None,
                on_stopped_leading=lambda: None,
                **kwargs,
            )

        # Long durations: without the watch, the standby would read the Lease once at
        # start and then not for 30 s.
        leader = make("replica-a", lease_duration=60.0, renew_deadline=40.0, retry_period=0.2)
        standby = make(
            "replica-b", lease_duration=90.0, renew_deadline=60.0, retry_period=30.0, watch=True
        )
        leader.start()
        try:
            wait_for(leader.is_leader, WAIT, "the leader")
            standby.start()
            seen: set[Any] = set()

            def renewals_seen() -> bool:
                seen.add(standby._observed)
                return len({key[1] for key in seen if key and key[0] == "replica-a"}) >= 3

            wait_for(renewals_seen, WAIT, "three renewals seen through the watch")
            assert not standby.is_leader()
        finally:
            standby.stop()
            leader.stop()

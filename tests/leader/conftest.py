"""A Kubernetes API sandbox per test, electors built against it, and recorders that
let tests wait for a condition (leadership changes, lease writes) with a deadline."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from provisioner.k8s.kubeapi import KubeAPI, load_api_client
from provisioner.k8s.leader import LeaderElector
from provisioner.sandbox.kube import KubeSandbox

NAMESPACE = "kube-system"
LEASE = "heketi-provisioner-test"
WAIT = 15.0
"""Upper bound for every wait; only reached when a test is about to fail."""

_ids = itertools.count(1)


class Waiter:
    """A condition variable around some state; ``until`` waits for a predicate."""

    def __init__(self) -> None:
        self.cond = threading.Condition()

    def until(self, predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)


class Callbacks(Waiter):
    """Records ``started``/``stopped`` calls of one elector."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def started(self) -> None:
        with self.cond:
            self.calls.append("started")
            self.cond.notify_all()

    def stopped(self) -> None:
        with self.cond:
            self.calls.append("stopped")
            self.cond.notify_all()

    def count(self, what: str) -> int:
        with self.cond:
            return self.calls.count(what)


class LeaseWrites(Waiter):
    """Every stored version of the test lease, fed by the sandbox's store listener."""

    def __init__(self, sandbox: KubeSandbox) -> None:
        super().__init__()
        self.versions: list[dict[str, Any]] = []
        sandbox.store.add_listener(self._on_change)

    def _on_change(self, storage: str, event: Any) -> None:
        obj = event.entry.obj
        if storage == "leases" and obj["metadata"]["name"] == LEASE:
            with self.cond:
                self.versions.append(obj["spec"].copy())
                self.cond.notify_all()

    def count(self) -> int:
        with self.cond:
            return len(self.versions)

    def renewals_by(self, identity: str) -> int:
        with self.cond:
            return sum(1 for v in self.versions if v.get("holderIdentity") == identity)


class Electors:
    """Builds electors, each with its own API client (as separate processes have)."""

    def __init__(self, sandbox: KubeSandbox) -> None:
        self.sandbox = sandbox
        self.made: list[LeaderElector] = []

    def api(self) -> KubeAPI:
        return KubeAPI(load_api_client(self.sandbox.kubeconfig_path))

    def make(
        self,
        identity: str | None = None,
        *,
        start: bool = True,
        **kwargs: Any,
    ) -> tuple[LeaderElector, Callbacks]:
        callbacks = Callbacks()
        kwargs.setdefault("lease_duration", 2.0)
        kwargs.setdefault("renew_deadline", 1.5)
        kwargs.setdefault("retry_period", 0.1)
        elector = LeaderElector(
            self.api(),
            namespace=NAMESPACE,
            name=LEASE,
            identity=identity or f"replica-{next(_ids)}",
            on_started_leading=callbacks.started,
            on_stopped_leading=callbacks.stopped,
            **kwargs,
        )
        self.made.append(elector)
        if start:
            elector.start()
        return elector, callbacks

    def stop_all(self) -> None:
        for elector in self.made:
            elector.stop()


@pytest.fixture
def sandbox() -> Iterator[KubeSandbox]:
    kube = KubeSandbox()
    kube.start()
    try:
        yield kube
    finally:
        kube.stop()


@pytest.fixture
def writes(sandbox: KubeSandbox) -> LeaseWrites:
    return LeaseWrites(sandbox)


@pytest.fixture
def electors(sandbox: KubeSandbox) -> Iterator[Electors]:
    made = Electors(sandbox)
    try:
        yield made
    finally:
        made.stop_all()


def lease(sandbox: KubeSandbox) -> dict[str, Any]:
    found = sandbox.get_object("leases", NAMESPACE, LEASE)
    assert found is not None, "the lease was never written"
    return found

"""The topology read before a create: cached, and read once however many workers ask."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from provisioner.gluster.storage_addresses import StorageAddresses


@dataclass
class Node:
    id: str
    storage_hostnames: tuple[str, ...]


@dataclass
class Cluster:
    nodes: tuple[str, ...]
    file: bool = True


class CountingHeketi:
    """A slow topology: every worker arrives while the first read is still going on."""

    def __init__(self, storage: dict[str, str], gate: threading.Event) -> None:
        self.storage = storage
        self.gate = gate
        self.calls = 0
        self.lock = threading.Lock()

    def _count(self) -> None:
        with self.lock:
            self.calls += 1

    def list_clusters(self) -> list[str]:
        self._count()
        self.gate.wait(5.0)
        return ["c" * 32]

    def get_cluster(self, cluster_id: str) -> Any:
        self._count()
        return Cluster(nodes=tuple(self.storage))

    def get_node(self, node_id: str) -> Any:
        self._count()
        return Node(node_id, (self.storage[node_id],))


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_workers_reads_the_topology_once() -> None:
    gate = threading.Event()
    heketi = CountingHeketi({"n1": "192.0.2.1", "n2": "192.0.2.2"}, gate)
    addresses = StorageAddresses(clock=Clock())
    answers: list[str | None] = []
    threads = [
        threading.Thread(target=lambda: answers.append(addresses.problem("u", heketi, ())))
        for _ in range(16)
    ]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10.0)
    assert answers == [None] * 16
    assert heketi.calls == 1 + 1 + 2  # list, cluster, two nodes: once for all 16


def test_a_host_name_is_named_and_the_answer_expires() -> None:
    gate = threading.Event()
    gate.set()
    heketi = CountingHeketi({"n1": "192.0.2.1", "n2": "gluster-2.example"}, gate)
    clock = Clock()
    addresses = StorageAddresses(ttl=300.0, clock=clock)
    problem = addresses.problem("u", heketi, ())
    assert problem is not None and "gluster-2.example" in problem and "n2" in problem
    assert addresses.problem("u", heketi, ()) == problem
    assert heketi.calls == 4
    heketi.storage["n2"] = "192.0.2.2"  # the operator fixed the topology
    clock.now = 301.0
    assert addresses.problem("u", heketi, ()) is None
    assert heketi.calls == 8

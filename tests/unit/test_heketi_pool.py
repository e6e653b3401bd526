"""The client cache keeps per-target state bounded."""

from __future__ import annotations

from typing import Any

from provisioner.gluster.pool import MAX_TARGETS, HeketiPool, HeketiTarget


class FakeClient:
    def __init__(self, target: HeketiTarget) -> None:
        self.target = target
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_clients_and_keys_are_bounded_oldest_unused_out() -> None:
    """Each rotated key makes a new target; without a bound a year of hourly
    rotations would keep thousands of connection pools (and keys) in memory."""
    made: list[FakeClient] = []

    def factory(target: HeketiTarget) -> Any:
        made.append(FakeClient(target))
        return made[-1]

    pool = HeketiPool(client_factory=factory)
    first = HeketiTarget("http://heketi:8080", "admin", "key-0")
    keep = pool.client(first)
    for n in range(1, MAX_TARGETS * 3):
        pool.client(HeketiTarget("http://heketi:8080", "admin", f"key-{n}"))
        pool.client(first)  # used all along: never the oldest
    assert len(pool._clients) == MAX_TARGETS
    assert len(pool._keys) == 1  # one (url, user): the latest key wins
    assert not keep.closed
    assert sum(c.closed for c in made) == len(made) - MAX_TARGETS
    for n in range(MAX_TARGETS * 2):
        pool.client(HeketiTarget(f"http://heketi-{n}:8080", "admin", "k"))
    assert len(pool._keys) == MAX_TARGETS
    assert pool.remembered_key("http://heketi:8080", "admin") is None  # evicted

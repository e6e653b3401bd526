"""The work queue: de-duplication, backoff growth and cap, shutdown, resilient workers."""

from __future__ import annotations

import threading

from provisioner.k8s.workqueue import WorkQueue, start_workers


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_added_twice_is_handed_out_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.add("a")
    q.add("b")
    assert len(q) == 2
    assert q.get(timeout=0) == "a"
    assert q.get(timeout=0) == "b"
    assert q.get(timeout=0) is None


def test_a_key_added_while_processing_runs_once_more_after_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get(timeout=0) == "a"
    q.add("a")
    q.add("a")
    assert q.get(timeout=0) is None  # never two workers on one key
    q.done("a")
    assert q.get(timeout=0) == "a"
    q.done("a")
    assert q.get(timeout=0) is None


def test_backoff_doubles_from_half_a_second_and_is_capped() -> None:
    q: WorkQueue[str] = WorkQueue()
    delays = [q.backoff_delay(n) for n in range(1, 13)]
    assert delays[:4] == [0.5, 1.0, 2.0, 4.0]
    assert delays[9] == 256.0
    assert delays[10:] == [300.0, 300.0]
    assert q.backoff_delay(10_000) == 300.0


def test_rate_limited_keys_wait_for_their_delay_and_forget_resets() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(base_delay=1.0, max_delay=8.0, clock=clock)
    assert [q.add_rate_limited("a") for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]
    assert q.num_requeues("a") == 5
    assert q.get(timeout=0) is None
    clock.now += 1.0
    assert q.get(timeout=0) == "a"
    q.done("a")
    q.forget("a")
    assert q.num_requeues("a") == 0
    assert q.add_rate_limited("a") == 1.0


def test_add_after_is_not_handed_out_early() -> None:
    clock = FakeClock()
    q: WorkQueue[str] = WorkQueue(clock=clock)
    q.add_after("late", 5.0)
    q.add("now")
    assert q.get(timeout=0) == "now"
    assert q.get(timeout=0) is None
    clock.now += 5.0
    assert q.get(timeout=0) == "late"


def test_shutdown_releases_blocked_getters() -> None:
    q: WorkQueue[str] = WorkQueue()
    results: list[str | None] = []
    getter = threading.Thread(target=lambda: results.append(q.get()))
    getter.start()
    q.shutdown()
    getter.join(5)
    assert not getter.is_alive()
    assert results == [None]
    q.add("ignored")
    assert q.get(timeout=0) is None


def test_wait_idle_reports_in_flight_work() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get(timeout=0) == "a"
    assert q.wait_idle(0) is False
    q.done("a")
    assert q.wait_idle(0) is True


def test_a_raising_handler_does_not_kill_its_worker(wait_for) -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=0.01)
    seen: list[str] = []
    lock = threading.Lock()

    def handler(key: str) -> None:
        with lock:
            seen.append(key)
            first = seen.count(key) == 1
        if key == "bad" and first:
            raise RuntimeError("boom")

    threads = start_workers(q, handler, count=1, name="test")
    q.add("bad")
    q.add("good")
    wait_for(lambda: seen.count("bad") == 2 and "good" in seen, what="retry and next key")
    assert threads[0].is_alive()
    q.add("later")
    wait_for(lambda: "later" in seen)
    q.shutdown()
    threads[0].join(5)
    assert not threads[0].is_alive()

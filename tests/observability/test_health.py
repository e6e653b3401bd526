"""``/healthz`` says whether the loops are wedged, ``/readyz`` whether caches are synced."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import World


class _WatchDied(BaseException):
    """Escapes the informer's ``except Exception``, as a real bug in a thread could."""


@pytest.fixture
def black_hole() -> Iterator[socket.socket]:
    """A port that takes connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield listener
    listener.close()


def test_probes_before_and_after_start(world: World) -> None:
    controller = world.build()
    assert world.get("/healthz") == (200, "ok\n")  # nothing runs yet: nothing is wedged
    assert world.get("/readyz")[0] == 503

    controller.start()

    assert world.get("/healthz") == (200, "ok\n")
    assert world.get("/readyz") == (200, "ok\n")
    controller.stop(grace=1.0)
    assert world.get("/readyz")[0] == 503


def test_a_worker_stuck_on_one_item_fails_liveness(world: World, black_hole: socket.socket) -> None:
    controller = world.build(stuck_worker_seconds=0.0)  # any item in hand counts as stuck
    controller.start()
    sc = world.storage_class(resturl=f"http://127.0.0.1:{black_hole.getsockname()[1]}")
    claim = world.claim(sc)
    key = f"default/{claim['metadata']['name']}"

    _, body = world.wait_for(
        lambda: (answer := world.get("/healthz"))[0] == 503 and answer,
        what="/healthz to report the stuck worker",
    )
    assert f"on claim {key}" in body

    black_hole.close()  # the pending request fails; the worker lets go of the claim
    world.wait_for(lambda: world.get("/healthz")[0] == 200, what="/healthz to recover")


def test_a_dead_watch_thread_fails_liveness(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threading, "excepthook", lambda _args: None)  # expected death
    controller = world.build()

    def die() -> None:
        raise _WatchDied

    monkeypatch.setattr(controller.pvs, "_watch_once", die)
    controller.start()  # the list (sync) works; the first watch kills the thread

    _, body = world.wait_for(
        lambda: (answer := world.get("/healthz"))[0] == 503 and answer,
        what="/healthz to report the dead informer",
    )
    assert "informer persistentvolumes: watch thread ended" in body
    assert world.get("/readyz")[0] == 200  # readiness is about caches, not liveness

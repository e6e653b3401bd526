"""One controller, several names: ``Backends`` routes each call to the backend it
concerns and never lets one backend's trouble or capabilities leak to another."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pytest

from provisioner.controller.backends import Backends, served_names
from provisioner.controller.contract import (
    Gate,
    Provisioner,
    ProvisionError,
    Reconciler,
    Repairer,
    Takeover,
    WatchedKind,
)
from provisioner.controller.keys import ANN_PROVISIONED_BY
from provisioner.k8s.versions import ServerVersion

Obj = dict[str, Any]
SERVER = ServerVersion.parse("v1.30.0")


class FileLike:
    """Every capability, recording calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def provision(self, claim: Obj, storage_class: Obj) -> Obj:
        self.calls.append("provision")
        return {"kind": "PersistentVolume"}

    def delete(self, pv: Obj) -> None:
        self.calls.append("delete")

    def gate(self, storage_class: Obj, server: ServerVersion) -> str | None:
        return "closed"

    def plugin_removed(self, server: ServerVersion) -> bool:
        return True

    def watched_kinds(self) -> Sequence[WatchedKind]:
        return (WatchedKind("endpoints", "l"), WatchedKind("services", "l"))

    def watched_key(self, pv: Obj) -> str | None:
        return "ns/name"

    def repair(self, pv: Obj) -> bool:
        return True

    def reconcile(self, pvs: Iterable[Obj], claims: Iterable[Obj], classes: Iterable[Obj]) -> int:
        raise RuntimeError("heketi down")

    def next_reconcile_in(self) -> float | None:
        return 5.0


class BlockLike:
    """A Provisioner and a Reconciler only."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def provision(self, claim: Obj, storage_class: Obj) -> Obj:
        self.calls.append("provision")
        return {"kind": "PersistentVolume"}

    def delete(self, pv: Obj) -> None:
        self.calls.append("delete")

    def reconcile(self, pvs: Iterable[Obj], claims: Iterable[Obj], classes: Iterable[Obj]) -> int:
        return 2

    def next_reconcile_in(self) -> float | None:
        return 1.0


def pv_of(name: str) -> Obj:
    return {"metadata": {"name": "pvc-1", "annotations": {ANN_PROVISIONED_BY: name}}}


@pytest.fixture
def parts() -> tuple[Backends, FileLike, BlockLike]:
    file, block = FileLike(), BlockLike()
    return Backends({"gluster.org/heketi": file, "gluster.org/glusterblock": block}), file, block


def test_it_is_a_provisioner_with_every_capability(parts: Any) -> None:
    backends, _, _ = parts
    for capability in (Provisioner, Gate, Takeover, Repairer, Reconciler):
        assert isinstance(backends, capability)
    assert served_names(backends, "x") == {"gluster.org/heketi", "gluster.org/glusterblock"}
    assert served_names(FileLike(), "gluster.org/heketi") == {"gluster.org/heketi"}  # type: ignore[arg-type]


def test_calls_go_to_the_backend_they_concern(parts: Any) -> None:
    backends, file, block = parts
    backends.provision({}, {"provisioner": "gluster.org/glusterblock"})
    backends.delete(pv_of("gluster.org/heketi"))
    assert (file.calls, block.calls) == (["delete"], ["provision"])
    with pytest.raises(ProvisionError):
        backends.provision({}, {"provisioner": "someone.else/x"})
    with pytest.raises(ProvisionError):
        backends.delete(pv_of("someone.else/x"))


def test_a_capability_is_only_its_backends(parts: Any) -> None:
    backends, _, _ = parts
    assert backends.gate({"provisioner": "gluster.org/heketi"}, SERVER) == "closed"
    assert backends.gate({"provisioner": "gluster.org/glusterblock"}, SERVER) is None
    assert backends.watched_key(pv_of("gluster.org/glusterblock")) is None
    assert backends.repair(pv_of("gluster.org/glusterblock")) is False
    assert backends.repair(pv_of("gluster.org/heketi")) is True
    assert len(backends.watched_kinds()) == 2


def test_one_failing_sweep_does_not_stop_the_others(parts: Any) -> None:
    backends, _, _ = parts
    assert backends.reconcile([], [], []) == 2
    assert backends.next_reconcile_in() == 1.0


def test_names_must_be_given() -> None:
    with pytest.raises(ValueError):
        Backends({})
    with pytest.raises(ValueError):
        Backends({"": BlockLike()})  # type: ignore[dict-item]


def test_clone_and_expand_go_to_a_backend_that_can(parts: Any) -> None:
    backends, _, _ = parts
    from provisioner.controller.contract import Cloner, Expander, InvalidInput

    assert isinstance(backends, Cloner) and isinstance(backends, Expander)
    with pytest.raises(InvalidInput, match=r"spec\.dataSource"):
        backends.clone({}, {"provisioner": "gluster.org/glusterblock"}, pv_of("x"))
    with pytest.raises(InvalidInput, match="cannot grow"):
        backends.expand(pv_of("gluster.org/glusterblock"), 2**30)
    assert backends.resized_by_server(SERVER) is False  # no backend here grows volumes

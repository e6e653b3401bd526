"""Fixtures for the real-peer tier: real etcd, kube-apiserver, kube-controller-manager
and Heketi (mock executor), built by ``testbeds/peers/build`` and started by
``testbeds.peers``.

Without the binaries every test here is skipped with one message. Set
``HEKETI_PROVISIONER_REAL_PEERS=require`` (e.g. in a CI job that built them) to make
that a failure instead. ``HEKETI_PROVISIONER_PEERS_DIR`` selects the binary cache,
as it does for the build script.

``controller_factory`` starts our controller (``testbeds.harness.controller``) as its own
process under the RBAC of ``manifests/``; at teardown it stops every process it
started and fails the test if any of their logs reports a 403: RBAC proven on a real
authorizer.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testbeds.harness.controller import ControllerProcess, start_controller
from testbeds.harness.processes import reap_leftovers
from testbeds.peers import (
    KUBE_VERSIONS,
    Peers,
    PeersNotBuilt,
    RealHeketi,
    RealKube,
    find_peers,
    start_heketi,
    start_kube,
)

NOT_BUILT = "real peers not built: run testbeds/peers/build (needs Go >= 1.26)"


@pytest.fixture(scope="session")
def real_peers() -> Peers:
    # processes an earlier, killed run left behind (their owner is gone); beds of
    # runs going on now are not touched
    reap_leftovers()
    try:
        return find_peers()
    except PeersNotBuilt as e:
        if os.environ.get("HEKETI_PROVISIONER_REAL_PEERS") == "require":
            pytest.fail(f"{NOT_BUILT}: {e}")
        pytest.skip(NOT_BUILT)


@pytest.fixture(scope="session", params=KUBE_VERSIONS, ids=lambda v: f"k8s-{v}")
def real_kube(
    request: pytest.FixtureRequest, real_peers: Peers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealKube]:
    """etcd + kube-apiserver + kube-controller-manager, once per version and session
    (pytest finishes one version's stack before it starts the next)."""
    version: str = request.param
    workdir: Path = tmp_path_factory.mktemp(f"kube-{version}")
    with start_kube(real_peers, version, workdir) as kube:
        yield kube


@pytest.fixture(scope="session")
def real_heketi(
    real_peers: Peers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealHeketi]:
    with start_heketi(real_peers, tmp_path_factory.mktemp("heketi")) as heketi:
        yield heketi


@pytest.fixture(scope="session")
def kube_heketi(
    real_kube: RealKube, real_peers: Peers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealHeketi]:
    """A Heketi of its own per Kubernetes version: ``audit`` judges every volume
    named from a claim uid, so volumes of the other cluster would count as orphans."""
    workdir = tmp_path_factory.mktemp(f"heketi-{real_kube.version}")
    with start_heketi(real_peers, workdir) as heketi:
        yield heketi


ControllerFactory = Callable[..., ControllerProcess]


@pytest.fixture
def controller_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[ControllerFactory]:
    """``controller_factory(kube, **kw)`` -> a running ``ControllerProcess`` (keywords
    as ``start_controller``; ``log_path`` defaults to ``<tmp_path>/controller-<n>.log``).
    Every process is stopped at teardown; a 403 in any of their logs fails the test."""
    started: list[ControllerProcess] = []
    counter = itertools.count(1)

    def factory(kube: RealKube, **kw: Any) -> ControllerProcess:
        kw.setdefault("log_path", tmp_path / f"controller-{next(counter)}.log")
        cp = start_controller(kube, **kw)
        started.append(cp)
        return cp

    yield factory
    forbidden: list[str] = []
    for cp in started:
        cp.stop()
        forbidden += [f"{cp.log_path.name}: {line}" for line in cp.forbidden_lines()]
    if forbidden:
        pytest.fail(
            "the controller was refused by the real authorizer (manifests/rbac.yaml "
            "lacks a grant):\n" + "\n".join(forbidden[:20]),
            pytrace=False,
        )

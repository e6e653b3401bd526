"""Fixtures for the real-peer tier: real etcd, kube-apiserver, kube-controller-manager
and Heketi (mock executor), built by ``testbeds/peers/build`` and started by
``tests/real/peers.py``.

Without the binaries every test here is skipped with one message. Set
``HEKETI_PROVISIONER_REAL_PEERS=require`` (e.g. in a CI job that built them) to make
that a failure instead. ``HEKETI_PROVISIONER_PEERS_DIR`` selects the binary cache,
as it does for the build script.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .peers import (
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

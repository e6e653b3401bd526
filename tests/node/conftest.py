"""Fixtures for the node tier: a real one-node Kubernetes 1.25.16 cluster
(``testbeds.node``: kubelet on containerd, kube-proxy, kube-scheduler, beside the
peers' API server and controller manager), our image from our Dockerfile, the chart
installed with helm, and Heketi with its mock executor.

The tier needs root, containerd, runc, the CNI plugins, the node's binaries
(``testbeds/peers/build``) and the images (``python -m testbeds.node images``).
Without them every test here is skipped with one line saying what is missing; with
``HEKETI_PROVISIONER_NODE=require`` (as ``.ci/run`` sets) that is a failure instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbeds.node import Node, NodeUnavailable, cleanup, preflight, start_node
from testbeds.peers import (
    Peers,
    PeersNotBuilt,
    RealHeketi,
    default_topology,
    find_peers,
    start_heketi,
)

from .kubectl import NodeKubectl

REQUIRE = "HEKETI_PROVISIONER_NODE"


def _unavailable(message: str) -> None:
    if os.environ.get(REQUIRE) == "require":
        pytest.fail(f"node tier required ({REQUIRE}=require) but {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def node_peers() -> Peers:
    try:
        peers = find_peers(node=True)
        preflight(peers)
    except (PeersNotBuilt, NodeUnavailable) as e:
        _unavailable(f"node bed unavailable: {str(e).splitlines()[0]}")
    return peers


# package scope: the node (kubelet, containerd, an API server ...) stops when this
# directory's tests are done, not at the end of the whole session
@pytest.fixture(scope="package")
def node(node_peers: Peers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    with start_node(node_peers, tmp_path_factory.mktemp("node")) as n:
        yield n
    # stopping removed every container, mount, link, rule, cgroup and directory
    left = cleanup.leftovers()
    assert not left, f"the node bed left: {left}"


@pytest.fixture(scope="package")
def node_heketi(
    node: Node, node_peers: Peers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealHeketi]:
    """Heketi (mock executor) whose storage addresses lie on the node's dead-end /24;
    pods reach it at ``node_heketi_url``."""
    topology = default_topology(storage_ips=node.ranges.storage_ips(3))
    workdir = tmp_path_factory.mktemp("heketi")
    with start_heketi(node_peers, workdir, topology=topology, bed="node") as heketi:
        yield heketi


@pytest.fixture(scope="package")
def node_heketi_url(node: Node, node_heketi: RealHeketi) -> str:
    """Heketi as a pod reaches it: on the node's address (Heketi listens on all)."""
    return f"http://{node.node_ip}:{node_heketi.url.rsplit(':', 1)[1]}"


@pytest.fixture(scope="package")
def kubectl(node: Node) -> NodeKubectl:
    return NodeKubectl(node)


@pytest.fixture
def namespace(kubectl: NodeKubectl, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of the test's own, deleted (with its pods) afterwards."""
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    kubectl.run("create", "namespace", name)
    yield name
    kubectl.run("delete", "namespace", name, "--wait=true", "--timeout=120s", check=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.timeout(900))

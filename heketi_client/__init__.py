"""A small, typed, standalone client for the Heketi REST API.

It imports nothing from Kubernetes or from the provisioner, so it can be used on its
own (an import-linter contract in ``pyproject.toml`` keeps it that way).

Start with ``HeketiClient``; exceptions live in ``heketi_client.errors`` (the tree is
drawn in that module's docstring).
"""

from heketi_client.client import HeketiClient
from heketi_client.models import (
    BlockHostingInfo,
    BrickInfo,
    ClusterInfo,
    DeviceInfo,
    Durability,
    NodeInfo,
    VolumeCreateRequest,
    VolumeInfo,
)
from heketi_client.operations import LatencyEstimator, PollPolicy
from heketi_client.retries import RetryPolicy
from heketi_client.transport import ResponseObserver, route_template

__all__ = [
    "BlockHostingInfo",
    "BrickInfo",
    "ClusterInfo",
    "DeviceInfo",
    "Durability",
    "HeketiClient",
    "LatencyEstimator",
    "NodeInfo",
    "PollPolicy",
    "ResponseObserver",
    "RetryPolicy",
    "VolumeCreateRequest",
    "VolumeInfo",
    "route_template",
]

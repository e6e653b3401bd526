"""A small, typed, standalone client for the Heketi REST API.

It imports nothing from Kubernetes or from the provisioner, so it can be used on its
own (an import-linter contract in ``pyproject.toml`` keeps it that way).

Start with ``HeketiClient``. Every exception is importable from here as well as from
``heketi_client.errors``, whose docstring draws the tree. The public modules are this
package, ``errors``, ``models`` and ``retries``; modules whose names start with an
underscore are internal and may change without notice.
"""

import logging

from heketi_client._client import HeketiClient
from heketi_client._operations import LatencyEstimator, PollPolicy
from heketi_client._transport import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_REQUEST_DEADLINE,
    ResponseObserver,
    route_template,
)
from heketi_client.errors import (
    AllocationFailed,
    BadRequest,
    Conflict,
    ForeignLocation,
    HeketiAPIError,
    HeketiConnectionError,
    HeketiError,
    HeketiTimeout,
    MalformedResponse,
    NoSpace,
    NotFound,
    OperationFailed,
    OperationTimeout,
    OutcomeUnknown,
    ResponseTooLarge,
    ServerError,
    ServiceUnavailable,
    Throttled,
    Unauthorized,
    UnexpectedNotFound,
    UnexpectedResponse,
    UnreadableVolume,
    VolumeNameInUse,
)
from heketi_client.models import (
    BlockHostingInfo,
    BlockVolumeCreateRequest,
    BlockVolumeInfo,
    BrickInfo,
    ClusterInfo,
    DeviceInfo,
    Durability,
    NodeInfo,
    VolumeCreateRequest,
    VolumeInfo,
)
from heketi_client.retries import RetryPolicy

# A library logs through the standard module and leaves output to the application.
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_REQUEST_DEADLINE",
    "AllocationFailed",
    "BadRequest",
    "BlockHostingInfo",
    "BlockVolumeCreateRequest",
    "BlockVolumeInfo",
    "BrickInfo",
    "ClusterInfo",
    "Conflict",
    "DeviceInfo",
    "Durability",
    "ForeignLocation",
    "HeketiAPIError",
    "HeketiClient",
    "HeketiConnectionError",
    "HeketiError",
    "HeketiTimeout",
    "LatencyEstimator",
    "MalformedResponse",
    "NoSpace",
    "NodeInfo",
    "NotFound",
    "OperationFailed",
    "OperationTimeout",
    "OutcomeUnknown",
    "PollPolicy",
    "ResponseObserver",
    "ResponseTooLarge",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "Throttled",
    "Unauthorized",
    "UnexpectedNotFound",
    "UnexpectedResponse",
    "UnreadableVolume",
    "VolumeCreateRequest",
    "VolumeInfo",
    "VolumeNameInUse",
    "route_template",
]

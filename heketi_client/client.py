"""``HeketiClient``: thin, typed methods over the transport and the operation follower.

Each method names its path, its body and how to read the answer; signing, retries,
error mapping and the async protocol all live below (``transport``, ``operations``).
One client can be shared by many threads: the session pools connections (up to
``pool_size`` per host) and the only other shared state, the latency estimate, is
locked.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from heketi_client.auth import DEFAULT_LIFETIME, HeketiJWTAuth
from heketi_client.errors import NotFound, OutcomeUnknown, UnexpectedResponse
from heketi_client.jsontypes import (
    ClusterJSON,
    ClusterListJSON,
    DeviceJSON,
    NodeJSON,
    VolumeJSON,
    VolumeListJSON,
)
from heketi_client.models import ClusterInfo, DeviceInfo, NodeInfo, VolumeCreateRequest, VolumeInfo
from heketi_client.operations import LatencyEstimator, OperationFollower, PollPolicy
from heketi_client.retries import RetryPolicy
from heketi_client.transport import ResponseObserver, Timeout, Transport, redact_url

J = TypeVar("J")
T = TypeVar("T")

_ID = re.compile(r"^[0-9a-fA-F]+$")

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)
"""(connect, read) seconds for each HTTP request."""

DEFAULT_OPERATION_TIMEOUT = 600.0
"""Seconds an async operation may take, from its 202, before ``OperationTimeout``."""


def _checked_id(value: str, what: str) -> str:
    # Ids go into the URL path; anything but hex could address another endpoint.
    if not isinstance(value, str) or not _ID.match(value):
        raise ValueError(f"{what} id must be hexadecimal, got {value!r}")
    return value


class HeketiClient:
    """A client for one Heketi server.

    ``user``/``key``: the JWT issuer (``admin`` or ``user``) and its key; with no key,
    no Authorization header is sent (for servers run with ``--disable-auth``).
    ``timeout``: per HTTP request, seconds or (connect, read). ``operation_timeout``:
    per async operation. ``retry``, ``poll``: see ``RetryPolicy`` and ``PollPolicy``.
    ``on_response``: called after every HTTP exchange (retries and polls too) with
    method, route template, status (None when no answer came) and seconds, for
    metrics; it never sees URLs, bodies or tokens. ``clock``, ``sleep`` and ``rng``
    exist so tests can run without real waiting.
    """

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        key: str | bytes | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        verify: bool | str = True,
        session: requests.Session | None = None,
        operation_timeout: float = DEFAULT_OPERATION_TIMEOUT,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        pool_size: int = 16,
        token_lifetime: float = DEFAULT_LIFETIME,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        on_response: ResponseObserver | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"Heketi URL must be http(s)://host[:port], got {redact_url(url)!r}")
        self.url = url.rstrip("/")
        self.user = user
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        auth: HeketiJWTAuth | None = None
        if key:
            auth = HeketiJWTAuth(
                user or "",
                key,
                strip_prefix=parts.path,
                lifetime=token_lifetime,
            )
        self._transport = Transport(
            self.url,
            session=session,
            auth=auth,
            timeout=timeout,
            verify=verify,
            retry=retry or RetryPolicy(),
            sleep=sleep,
            clock=clock,
            rng=rng,
            on_response=on_response,
        )
        poll = poll or PollPolicy()
        self._operations = OperationFollower(
            self._transport,
            policy=poll,
            timeout=operation_timeout,
            estimator=LatencyEstimator(poll.learning_rate),
            clock=clock,
            sleep=sleep,
        )

    def __repr__(self) -> str:
        auth = "jwt" if self._transport.auth is not None else "none"
        return f"HeketiClient({redact_url(self.url)!r}, user={self.user!r}, auth={auth})"

    def close(self) -> None:
        """Close pooled connections, if the session is ours."""
        if self._owns_session:
            self._transport.session.close()

    def __enter__(self) -> HeketiClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def latency(self) -> LatencyEstimator:
        """Learned operation durations (read-only use: benchmarks, metrics)."""
        return self._operations.estimator

    # -- plumbing ------------------------------------------------------------------

    def _get_json(self, path: str) -> Any:
        return _json_of(self._transport.send("GET", path, idempotent=True))

    def _mutate(self, method: str, path: str, body: Any, *, kind: str) -> requests.Response | None:
        """Send a mutating request and follow its operation to the final answer."""
        idempotent = method == "DELETE"
        response = self._transport.send(method, path, json=body, idempotent=idempotent)
        if response.status_code == 202:
            return self._operations.follow(response, kind=kind)
        return None if response.status_code == 204 else response

    def _volume_result(self, response: requests.Response | None, kind: str) -> VolumeInfo:
        if response is None:
            raise OutcomeUnknown(f"the {kind} finished without naming the resulting volume")
        try:
            return _parse(VolumeInfo.from_json, cast(VolumeJSON, _json_of(response)))
        except UnexpectedResponse as error:
            raise OutcomeUnknown(f"the {kind} finished but its result was unreadable") from error

    # -- reads ---------------------------------------------------------------------

    def hello(self) -> str:
        """Heketi's greeting: a cheap liveness check that needs no token."""
        return self._transport.send("GET", "/hello", idempotent=True).text.strip()

    def list_clusters(self) -> list[str]:
        return list(cast(ClusterListJSON, self._get_json("/clusters"))["clusters"])

    def get_cluster(self, cluster_id: str) -> ClusterInfo:
        path = f"/clusters/{_checked_id(cluster_id, 'cluster')}"
        return _parse(ClusterInfo.from_json, cast(ClusterJSON, self._get_json(path)))

    def get_node(self, node_id: str) -> NodeInfo:
        path = f"/nodes/{_checked_id(node_id, 'node')}"
        return _parse(NodeInfo.from_json, cast(NodeJSON, self._get_json(path)))

    def get_device(self, device_id: str) -> DeviceInfo:
        path = f"/devices/{_checked_id(device_id, 'device')}"
        return _parse(DeviceInfo.from_json, cast(DeviceJSON, self._get_json(path)))

    def list_volumes(self) -> list[str]:
        return list(cast(VolumeListJSON, self._get_json("/volumes"))["volumes"])

    def get_volume(self, volume_id: str) -> VolumeInfo:
        path = f"/volumes/{_checked_id(volume_id, 'volume')}"
        return _parse(VolumeInfo.from_json, cast(VolumeJSON, self._get_json(path)))

    def find_volume_by_name(self, name: str) -> VolumeInfo | None:
        """The first volume called ``name``, or None.

        Heketi has no lookup by name, so this lists every volume and reads each one:
        O(number of volumes) requests. Volumes that vanish meanwhile are skipped.
        Volumes still being created are invisible to Heketi's reads, so None does not
        prove that a create in flight will not produce one.
        """
        for volume_id in self.list_volumes():
            try:
                volume = self.get_volume(volume_id)
            except NotFound:
                continue
            if volume.name == name:
                return volume
        return None

    # -- operations ----------------------------------------------------------------

    def create_volume(self, request: VolumeCreateRequest) -> VolumeInfo:
        """Create and wait. On ``OutcomeUnknown``, look the name up before retrying."""
        response = self._mutate("POST", "/volumes", request.to_json(), kind="volume_create")
        return self._volume_result(response, "volume_create")

    def delete_volume(self, volume_id: str) -> None:
        """Delete and wait. ``NotFound`` means there was no such volume (already gone)."""
        path = f"/volumes/{_checked_id(volume_id, 'volume')}"
        self._mutate("DELETE", path, None, kind="volume_delete")

    def expand_volume(self, volume_id: str, expand_size: int) -> VolumeInfo:
        """Grow by ``expand_size`` GiB (an increment, not the new size) and wait."""
        if expand_size < 1:
            raise ValueError(f"expand_size must be at least 1 GiB, got {expand_size}")
        path = f"/volumes/{_checked_id(volume_id, 'volume')}/expand"
        response = self._mutate("POST", path, {"expand_size": expand_size}, kind="volume_expand")
        return self._volume_result(response, "volume_expand")

    def clone_volume(self, volume_id: str, name: str | None = None) -> VolumeInfo:
        """Clone (Heketi never checks clone names for uniqueness) and wait."""
        path = f"/volumes/{_checked_id(volume_id, 'volume')}/clone"
        body = {} if name is None else {"name": name}
        response = self._mutate("POST", path, body, kind="volume_clone")
        return self._volume_result(response, "volume_clone")


def _json_of(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError as error:
        raise UnexpectedResponse(
            f"expected JSON from {response.request.method} {response.request.path_url}, "
            f"got {response.headers.get('Content-Type', 'no content type')}"
        ) from error


def _parse(parser: Callable[[J], T], data: J) -> T:
    try:
        return parser(data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise UnexpectedResponse(f"Heketi's answer lacks or mistypes {error}") from error

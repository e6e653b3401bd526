"""``HeketiClient``: thin, typed methods over the transport and the operation follower.

Each method names its path, its body and how to read the answer; signing, retries,
error mapping and the async protocol all live below (``transport``, ``operations``).
One client can be shared by many threads: the session pools connections (up to
``pool_size`` per host) and the only other shared state, the latency estimate, is
locked (as is the process-wide watchdog that enforces ``request_deadline``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import requests

from heketi_client._auth import DEFAULT_LIFETIME, HeketiJWTAuth
from heketi_client._deadline import WatchedAdapter
from heketi_client._fields import Fields, is_id
from heketi_client._jsontypes import (
    BlockVolumeJSON,
    ClusterJSON,
    DeviceJSON,
    NodeJSON,
    VolumeJSON,
)
from heketi_client._operations import LatencyEstimator, OperationFollower, PollPolicy
from heketi_client._transport import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_REQUEST_DEADLINE,
    ResponseObserver,
    Timeout,
    Transport,
)
from heketi_client._urls import origin_of, redact_url
from heketi_client.errors import (
    MalformedResponse,
    NotFound,
    OutcomeUnknown,
    UnexpectedResponse,
    UnreadableVolume,
)
from heketi_client.models import (
    BlockVolumeCreateRequest,
    BlockVolumeInfo,
    ClusterInfo,
    DeviceInfo,
    NodeInfo,
    VolumeCreateRequest,
    VolumeInfo,
)
from heketi_client.retries import RetryPolicy

T = TypeVar("T")

DEFAULT_TIMEOUT: tuple[float, float] = (5.0, 30.0)
"""(connect, read) seconds for each HTTP request."""

DEFAULT_OPERATION_TIMEOUT = 600.0
"""Seconds an async operation may take, from its 202, before ``OperationTimeout``."""


def _checked_id(value: str, what: str) -> str:
    # Ids go into the URL path; anything else could address another endpoint. Heketi
    # stores ids in lowercase: an uppercase one routes but is never found, and a 404
    # on delete reads as "already gone" while the volume lives on.
    if not is_id(value):
        raise ValueError(
            f"{what} id must be 32 lowercase hexadecimal characters, got {value!r:.60}"
        )
    return value


class HeketiClient:
    """A client for one Heketi server.

    ``user``/``key``: the JWT issuer (``admin`` or ``user``) and its key; with no key,
    no Authorization header is sent (for servers run with ``--disable-auth``).
    ``timeout``: per HTTP request, seconds or (connect, read); the read timeout bounds
    each read, so ``request_deadline`` (60 s) bounds each request as a whole, body
    and retries included, against a server that trickles bytes. ``max_body_bytes`` (8 MiB, see
    ``DEFAULT_MAX_BODY_BYTES``) caps every response body. ``operation_timeout``: per
    async operation. ``retry``, ``poll``: see ``RetryPolicy`` and ``PollPolicy``.
    A ``session`` passed in is used as is: the deadline is then only checked between
    body chunks (see ``_deadline``); without one, the client makes its own.
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
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        request_deadline: float = DEFAULT_REQUEST_DEADLINE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        on_response: ResponseObserver | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"Heketi URL must be http(s)://host[:port], got {redact_url(url)!r}")
        if isinstance(max_body_bytes, bool) or max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be a positive number, got {max_body_bytes!r}")
        if not request_deadline > 0:
            raise ValueError(f"request_deadline must be positive, got {request_deadline!r}")
        self.url = url.rstrip("/")
        self.user = user
        self._owns_session = session is None
        if session is None:
            session = requests.Session()
            adapter = WatchedAdapter(pool_connections=1, pool_maxsize=pool_size)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        auth: HeketiJWTAuth | None = None
        if key:
            auth = HeketiJWTAuth(
                user or "",
                key,
                strip_prefix=parts.path,
                lifetime=token_lifetime,
                origin=origin_of(url),
            )
        self._transport = Transport(
            self.url,
            session=session,
            auth=auth,
            timeout=timeout,
            verify=verify,
            retry=retry or RetryPolicy(),
            max_body_bytes=max_body_bytes,
            request_deadline=request_deadline,
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

    def _get(self, path: str, parser: Callable[[Any], T]) -> T:
        """GET ``path`` and read it with ``parser``; unreadable answers are UnexpectedResponse."""
        return self._read(self._transport.send("GET", path, idempotent=True), parser)

    def _read(self, response: requests.Response, parser: Callable[[Any], T]) -> T:
        request = response.request
        method = request.method or "GET"
        path = self._transport.relative_path(request.url or "")
        status = response.status_code
        where = {"method": method, "path": path}
        try:
            data = response.json()
        except ValueError as error:
            content_type = response.headers.get("Content-Type", "no content type")
            raise UnexpectedResponse(
                f"expected JSON from {method} {path}, got {content_type}",
                **where,
                status=status,
            ) from error
        try:
            return parser(data)
        except MalformedResponse as error:
            error.method, error.path, error.status = method, path, status
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            # Defence in depth: the readers check types, so this means a gap there.
            raise UnexpectedResponse(
                f"Heketi's answer to {method} {path} is malformed: {error!r:.200}",
                **where,
                status=status,
            ) from error

    def _mutate(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        kind: str,
        on_finished: Callable[[], None] | None = None,
    ) -> requests.Response | None:
        """Send a mutating request and follow its operation to the final answer."""
        idempotent = method == "DELETE"
        response = self._transport.send(method, path, json=body, idempotent=idempotent)
        if response.status_code == 202:
            return self._operations.follow(
                response, kind=kind, method=method, path=path, on_finished=on_finished
            )
        return None if response.status_code == 204 else response

    def _volume_result(self, response: requests.Response | None, kind: str) -> VolumeInfo:
        if response is None:
            raise OutcomeUnknown(f"the {kind} finished without naming the resulting volume")
        try:
            return self._read(response, lambda d: VolumeInfo.from_json(cast(VolumeJSON, d)))
        except UnexpectedResponse as error:
            raise OutcomeUnknown(
                f"the {kind} finished but its result was unreadable: {error}",
                method=error.method,
                path=error.path,
                status=error.status,
            ) from error

    # -- reads ---------------------------------------------------------------------

    def hello(self) -> str:
        """Heketi's greeting: a cheap liveness check that needs no token."""
        return self._transport.send("GET", "/hello", idempotent=True).text.strip()

    def list_clusters(self) -> list[str]:
        return self._get("/clusters", lambda d: list(Fields(d).idents("clusters", required=True)))

    def get_cluster(self, cluster_id: str) -> ClusterInfo:
        path = f"/clusters/{_checked_id(cluster_id, 'cluster')}"
        return self._get(path, lambda d: ClusterInfo.from_json(cast(ClusterJSON, d)))

    def get_node(self, node_id: str) -> NodeInfo:
        path = f"/nodes/{_checked_id(node_id, 'node')}"
        return self._get(path, lambda d: NodeInfo.from_json(cast(NodeJSON, d)))

    def get_device(self, device_id: str) -> DeviceInfo:
        path = f"/devices/{_checked_id(device_id, 'device')}"
        return self._get(path, lambda d: DeviceInfo.from_json(cast(DeviceJSON, d)))

    def list_volumes(self) -> list[str]:
        return self._get("/volumes", lambda d: list(Fields(d).idents("volumes", required=True)))

    def get_volume(self, volume_id: str) -> VolumeInfo:
        """One volume; ``UnreadableVolume`` if Heketi's answer for it cannot be used.

        That includes an answer describing another volume than the one asked for.
        Callers reading many volumes skip an ``UnreadableVolume`` as they skip a
        ``NotFound``: one bad volume must not stop them seeing all the others.
        """
        path = f"/volumes/{_checked_id(volume_id, 'volume')}"
        try:
            volume = self._get(path, lambda d: VolumeInfo.from_json(cast(VolumeJSON, d)))
        except UnexpectedResponse as error:
            raise UnreadableVolume(volume_id, str(error), path=path, status=error.status) from error
        if volume.id != volume_id:
            raise UnreadableVolume(
                volume_id, f"Heketi answered with volume {volume.id}", path=path, status=200
            )
        return volume

    def find_volume_by_name(self, name: str) -> VolumeInfo | None:
        """The first volume called ``name``, or None.

        Heketi has no lookup by name, so this lists every volume and reads each one:
        O(number of volumes) requests. Volumes that vanish meanwhile are skipped.
        Volumes still being created are invisible to Heketi's reads, so None does not
        prove that a create in flight will not produce one.

        An unreadable volume is skipped too, but if no readable volume has the name,
        the first ``UnreadableVolume`` is raised rather than None: the unreadable one
        might be the one asked for, and None would invite a second create.
        """
        unreadable: UnreadableVolume | None = None
        for volume_id in self.list_volumes():
            try:
                volume = self.get_volume(volume_id)
            except NotFound:
                continue
            except UnreadableVolume as error:
                unreadable = unreadable or error
                continue
            if volume.name == name:
                return volume
        if unreadable is not None:
            raise unreadable
        return None

    # -- operations ----------------------------------------------------------------

    def create_volume(
        self, request: VolumeCreateRequest, *, on_finished: Callable[[], None] | None = None
    ) -> VolumeInfo:
        """Create and wait. On ``OutcomeUnknown``, look the name up before retrying.

        ``on_finished``: called when Heketi reports the operation ended, before the new
        volume is read (``OperationFollower.follow``)."""
        response = self._mutate(
            "POST", "/volumes", request.to_json(), kind="volume_create", on_finished=on_finished
        )
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

    # -- block volumes ---------------------------------------------------------------

    def list_block_volumes(self) -> list[str]:
        """Ids of every block volume (Heketi has no lookup by name here either)."""
        return self._get(
            "/blockvolumes", lambda d: list(Fields(d).idents("blockvolumes", required=True))
        )

    def get_block_volume(self, block_volume_id: str) -> BlockVolumeInfo:
        """One block volume; ``UnreadableVolume`` if the answer cannot be used (also
        when it describes another block volume than the one asked for)."""
        path = f"/blockvolumes/{_checked_id(block_volume_id, 'block volume')}"
        try:
            volume = self._get(path, lambda d: BlockVolumeInfo.from_json(cast(BlockVolumeJSON, d)))
        except UnexpectedResponse as error:
            raise UnreadableVolume(
                block_volume_id, str(error), path=path, status=error.status
            ) from error
        if volume.id != block_volume_id:
            raise UnreadableVolume(
                block_volume_id,
                f"Heketi answered with block volume {volume.id}",
                path=path,
                status=200,
            )
        return volume

    def create_block_volume(self, request: BlockVolumeCreateRequest) -> BlockVolumeInfo:
        """Create and wait (Heketi may first create a block-hosting volume). On
        ``OutcomeUnknown``, look the name up before retrying."""
        response = self._mutate(
            "POST", "/blockvolumes", request.to_json(), kind="blockvolume_create"
        )
        if response is None:
            raise OutcomeUnknown("the blockvolume_create finished without naming the volume")
        try:
            return self._read(
                response, lambda d: BlockVolumeInfo.from_json(cast(BlockVolumeJSON, d))
            )
        except UnexpectedResponse as error:
            raise OutcomeUnknown(
                f"the blockvolume_create finished but its result was unreadable: {error}",
                method=error.method,
                path=error.path,
                status=error.status,
            ) from error

    def delete_block_volume(self, block_volume_id: str) -> None:
        """Delete and wait. ``NotFound`` means there was no such block volume."""
        path = f"/blockvolumes/{_checked_id(block_volume_id, 'block volume')}"
        self._mutate("DELETE", path, None, kind="blockvolume_delete")

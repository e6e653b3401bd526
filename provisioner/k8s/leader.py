"""Lease-based leader election (``coordination.k8s.io/v1`` Leases), through ``KubeAPI``.

Two replicas run so that a standby takes over quickly; only one may provision at a
time, or two processes could create two Heketi volumes for one claim. The protocol
is the one kube-controller-manager and client-go use, so ``kubectl get lease`` shows
who leads and other tooling understands the object:

* A candidate takes the lease when it is absent, released (empty
  ``holderIdentity``) or expired. Every write carries the ``resourceVersion`` that
  was read, so of two candidates racing for an expired lease exactly one wins; the
  other gets 409, reads again and sees the winner.
* Expiry is judged on *this* process's monotonic clock, never by comparing
  ``renewTime`` with the local wall clock: nodes' clocks drift. A record counts as
  expired when it has not changed for ``leaseDurationSeconds`` since this process
  first saw it in that state. (A standby that starts next to a dead leader therefore
  waits one full lease duration: safe, and what client-go does too.)
* The leader renews every ``retry_period``. If it has not renewed for
  ``renew_deadline`` it stops leading at once (``on_stopped_leading``) although the
  lease is still its own for ``lease_duration - renew_deadline`` more seconds: that
  margin is what keeps two leaders from working at the same moment. Each request is
  given at most the time left before the deadline, so a hanging API server cannot
  delay the step-down.
* A write counts from when it was *sent*, not from when its answer came: the API
  server may have stored it (and other replicas started counting) at any moment in
  between, so only the send time is a bound this process can trust. A slow answer
  therefore never lengthens how long this process believes it leads, and an
  acquisition answered after the renew deadline is not a start of leadership.
* ``release()`` clears ``holderIdentity`` on a clean shutdown, so a standby takes over
  on its next retry instead of after a full lease duration.
* A standby tries again the moment the lease it saw expires, not up to a retry period
  later. With ``watch=True`` it also *sees* each renewal as it happens (a watch on the
  one Lease, RBAC ``watch`` on leases), instead of at its next poll: the expiry it
  counts then starts at the leader's last renewal, not up to a retry period after it,
  so a takeover after the leader died takes one lease duration, not up to one plus
  two retry periods. Without the grant (403) it falls back to polling alone.

After losing leadership the elector goes back to being a candidate; callers that
cannot restart their work (the controller) should exit instead, as client-go users do,
from ``on_lost_leading``: it runs only when leadership ended without ``stop()`` (the
deadline passed, another holder, an error), before ``on_stopped_leading``, so a
clean shutdown can still ``release()`` while a lost lease is never written again.
Callbacks run on the elector's thread and must return quickly: they start or stop
work, they do not do it. ``on_stopped_leading`` is called exactly once after each
``on_started_leading`` (unless ``on_lost_leading`` does not return).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from provisioner.k8s.errors import KubeAPIError, KubeConflict, KubeForbidden, KubeNotFound
from provisioner.k8s.kubeapi import KubeAPI, KubeObject
from provisioner.k8s.leases import RESOURCE, lease_body, lease_spec

__all__ = ["LeaderElector"]

log = structlog.get_logger(__name__)

_MIN_REQUEST_TIMEOUT = 0.2
"""Below this a request cannot even connect; the deadline check then decides."""


class LeaderElector:
    """Contend for one Lease on a daemon thread; see the module docstring."""

    def __init__(
        self,
        kube: KubeAPI,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_started_leading: Callable[[], None],
        on_stopped_leading: Callable[[], None],
        on_lost_leading: Callable[[], None] | None = None,
        on_forbidden: Callable[[KubeForbidden], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[threading.Event, float], bool] = threading.Event.wait,
        watch: bool = False,
    ) -> None:
        """``clock`` and ``wait`` (wait for the event, at most that many seconds) come
        together: a fake clock's ``wait`` moves it forward, so tests run the whole
        schedule without real time passing. ``on_forbidden``, if given, is told of a
        403 before the first acquisition and ends the election (waiting cannot grant a
        permission); without it such a 403 is retried like any other error."""
        if not identity:
            raise ValueError("identity must not be empty")
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError(
                "need 0 < retry_period < renew_deadline < lease_duration, got "
                f"{retry_period} / {renew_deadline} / {lease_duration}"
            )
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._on_lost = on_lost_leading
        self._on_forbidden = on_forbidden
        self._clock = clock
        self._wait = wait
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._leading = False
        self._last_renew = 0.0
        self._lease: KubeObject | None = None  # the last version read or written
        self._observed: tuple[Any, ...] | None = None  # holder, renewTime, resourceVersion
        self._observed_at = 0.0
        self._last_error = ""
        self._watch = watch
        self._stream: Any = None  # the open watch of the Lease, closed by stop()

    # -- public --------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a LeaderElector can be started once")
        self._thread = threading.Thread(
            target=self._run, name=f"leader-election-{self.name}", daemon=True
        )
        self._thread.start()
        if self._watch:
            threading.Thread(
                target=self._watch_lease, name=f"leader-watch-{self.name}", daemon=True
            ).start()

    def is_leader(self) -> bool:
        """True while leading and not past the renew deadline (even mid-request)."""
        with self._lock:
            return self._leading and self._clock() < self._last_renew + self.renew_deadline

    def running(self) -> bool:
        """Whether the election thread is alive (False before ``start`` and after ``stop``)."""
        return self._thread is not None and self._thread.is_alive()

    def holder(self) -> str:
        """The holder this process last saw in the lease ("" if none or unknown)."""
        with self._lock:
            return str(lease_spec(self._lease).get("holderIdentity") or "")

    @property
    def lease(self) -> str:
        """``namespace/name`` of the Lease, as log lines name it."""
        return f"{self.namespace}/{self.name}"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop contending and renewing, without releasing; the lease then expires.

        ``on_stopped_leading`` has run (if this process was leading) when this returns,
        unless it is called from a callback, on the elector's own thread.
        """
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def release(self, timeout: float = 10.0) -> bool:
        """Stop, then hand the lease back so a standby takes over at once.

        Returns True if the lease was ours and is now released. Only a lease this
        process still holds is touched: the write carries its resourceVersion.
        """
        self.stop(timeout)
        for _ in range(3):
            with self._lock:
                lease = self._lease
            if lease is None or lease_spec(lease).get("holderIdentity") != self.identity:
                return False
            body = self._record(lease, holder="", duration_seconds=1, acquired=False)
            try:
                written = self._bounded(self.renew_deadline).replace(RESOURCE, body, self.namespace)
            except KubeConflict:
                if not self._read_lease():
                    return False
                continue
            except KubeAPIError as err:
                log.warning("leader.release_failed", lease=self.lease, error=str(err))
                return False
            with self._lock:
                self._lease = written
            log.info("leader.released", lease=self.lease)
            return True
        return False

    # -- the loop ------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if self._acquire():
                    self._started()
                    self._stopped(lost=self._renew_until_lost())
        finally:
            if self._leading:  # only on an unexpected exception
                self._stopped(lost=True)

    def _acquire(self) -> bool:
        """Try until the lease is ours (True) or ``stop()`` was called (False)."""
        conflicts = 0
        while not self._stop.is_set():
            try:
                if self._try_acquire_or_renew(self._bounded(self.retry_period)):
                    return True
            except KubeConflict as err:
                conflicts += 1
                if conflicts <= 2:
                    continue  # someone wrote in between: read again at once
                self._note_error(err)
            except KubeForbidden as err:
                if self._on_forbidden is None:
                    self._note_error(err)
                else:
                    self._stop.set()
                    self._on_forbidden(err)
                    return False
            except KubeAPIError as err:
                self._note_error(err)
            except Exception:  # a bug must not kill the thread silently
                log.exception("leader.acquire_error", lease=self.lease)
            conflicts = 0
            self._wait(self._stop, self._until_next_try())
        return False

    def _until_next_try(self) -> float:
        """The retry period, or less when the lease we saw expires sooner: a standby
        tries at the moment the holder's lease runs out, not up to a retry period
        later (that would be added to every takeover)."""
        with self._lock:
            lease, observed_at = self._lease, self._observed_at
        spec = lease_spec(lease)
        if spec.get("holderIdentity") in (None, "", self.identity):
            return self.retry_period
        expires_in = observed_at + self._duration(spec) - self._clock()
        # A hair past the expiry: the check is ">=" on the same clock.
        return max(0.001, min(self.retry_period, expires_in + 0.001))

    def _duration(self, spec: dict[str, Any]) -> float:
        duration = spec.get("leaseDurationSeconds")
        if isinstance(duration, int) and duration > 0:
            return float(duration)
        return self.lease_duration

    def _renew_until_lost(self) -> bool:
        """Renew every retry_period; return True when leadership is lost, False on stop()."""
        while True:
            deadline = self._last_renew + self.renew_deadline
            self._wait(self._stop, max(0.0, min(self.retry_period, deadline - self._clock())))
            if self._stop.is_set():
                return False
            while True:
                left = deadline - self._clock()
                if left <= 0:
                    log.warning(
                        "leader.deadline_passed",
                        lease=self.lease,
                        renew_deadline=self.renew_deadline,
                        error=self._last_error or "no answer",
                    )
                    return True
                try:
                    if not self._try_acquire_or_renew(self._bounded(left)):
                        log.warning("leader.taken_over", lease=self.lease, holder=self.holder())
                        return True
                    break
                except KubeConflict:
                    continue  # re-read and try again within the deadline
                except KubeAPIError as err:
                    self._note_error(err)
                except Exception as err:
                    log.exception("leader.renew_error", lease=self.lease)
                    self._last_error = type(err).__name__
                self._wait(self._stop, max(0.0, min(self.retry_period, deadline - self._clock())))
                if self._stop.is_set():
                    return False

    def _started(self) -> None:
        log.info("leader.acquired", lease=self.lease, identity=self.identity)
        self._call(self._on_started, "on_started_leading")

    def _stopped(self, *, lost: bool) -> None:
        with self._lock:
            self._leading = False
        if lost and self._on_lost is not None:
            self._call(self._on_lost, "on_lost_leading")
        self._call(self._on_stopped, "on_stopped_leading")

    @staticmethod
    def _call(callback: Callable[[], None], what: str) -> None:
        try:
            callback()
        except Exception:
            log.exception("leader.callback_failed", callback=what)

    # -- one attempt ---------------------------------------------------------

    def _try_acquire_or_renew(self, kube: KubeAPI) -> bool:
        """One read-modify-write; True if we hold the lease afterwards.

        Raises ``KubeConflict`` when another writer got in between (read again).
        """
        with self._lock:
            lease, leading = self._lease, self._leading
        if lease is None or not leading:
            try:
                lease = kube.get(RESOURCE, self.name, self.namespace)
            except KubeNotFound:
                return self._create(kube)
            self._observe(lease)
        spec = lease_spec(lease)
        holder = spec.get("holderIdentity") or ""
        if holder and holder != self.identity and not self._expired(spec):
            return False
        if leading and holder != self.identity:
            return False  # taken over after it expired on the other side's clock
        body = self._record(lease, holder=self.identity, acquired=holder != self.identity)
        sent = self._clock()
        try:
            written = kube.replace(RESOURCE, body, self.namespace)
        except KubeConflict:
            with self._lock:
                self._lease = None  # force a fresh read
            raise
        return self._won(written, sent)

    def _create(self, kube: KubeAPI) -> bool:
        body = self._record(None, holder=self.identity, acquired=True)
        sent = self._clock()
        written = kube.create(RESOURCE, body, self.namespace)  # AlreadyExists: a conflict
        return self._won(written, sent)

    def _won(self, written: KubeObject, sent: float) -> bool:
        """Record a successful write sent at ``sent``; True if leading afterwards.

        A write answered after ``sent + renew_deadline`` proves nothing about now:
        other replicas may already count the lease as expired. It neither starts
        leadership nor extends it (the renew loop then finds its deadline passed).
        """
        with self._lock:
            self._lease = written
            self._last_error = ""
            if self._clock() < sent + self.renew_deadline:
                self._leading = True
                self._last_renew = max(self._last_renew, sent)
            leading = self._leading
        self._observe(written)
        return leading

    def _read_lease(self) -> bool:
        try:
            lease = self._bounded(self.retry_period).get(RESOURCE, self.name, self.namespace)
        except KubeAPIError:
            return False
        with self._lock:
            self._lease = lease
        return True

    def _observe(self, lease: KubeObject) -> None:
        """Remember when this record (holder, renewTime, version) was first seen."""
        key = _record_key(lease)
        with self._lock:
            self._lease = lease
            if key != self._observed:
                self._observed = key
                self._observed_at = self._clock()

    def _watch_lease(self) -> None:
        """Note every version of the Lease as it is written (see the module docstring).

        Only the observation time is taken from here, never ``_lease``: the loop's
        own reads and writes stay the only source of the version it writes against.
        """
        failures = 0
        while not self._stop.is_set():
            try:
                stream = self.kube.open_watch(
                    RESOURCE,
                    namespace=self.namespace,
                    field_selector=f"metadata.name={self.name}",
                    resource_version="",
                    timeout_seconds=300,
                    allow_bookmarks=False,
                )
                self._stream = stream
                if self._stop.is_set():
                    stream.close()
                    return
                for event in stream:
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self._seen_in_watch(event.get("object") or {})
                    failures = 0
            except KubeAPIError as err:
                if err.status in (401, 403, 404, 405):
                    log.info("leader.watch_unavailable", lease=self.lease, error=str(err))
                    return  # polling alone, as before
                failures += 1
            except Exception:  # never let the watcher end the process
                log.exception("leader.watch_error", lease=self.lease)
                return
            finally:
                self._stream = None
            self._stop.wait(min(self.retry_period * failures, 30.0))

    def _seen_in_watch(self, lease: KubeObject) -> None:
        key = _record_key(lease)
        with self._lock:
            if key != self._observed and not self._leading:
                self._observed = key
                self._observed_at = self._clock()

    def _expired(self, spec: dict[str, Any]) -> bool:
        with self._lock:
            observed_at = self._observed_at
        return self._clock() >= observed_at + self._duration(spec)

    def _record(
        self, lease: KubeObject | None, *, holder: str, acquired: bool, duration_seconds: int = 0
    ) -> KubeObject:
        """The lease body to write: ``lease`` (kept metadata) with a new spec."""
        return lease_body(
            lease,
            name=self.name,
            namespace=self.namespace,
            holder=holder,
            acquired=acquired,
            duration_seconds=duration_seconds or max(1, math.ceil(self.lease_duration)),
        )

    def _bounded(self, seconds: float) -> KubeAPI:
        """The same connection pool, with a request timeout that ends by ``seconds``."""
        timeout = max(_MIN_REQUEST_TIMEOUT, min(seconds, self.kube.request_timeout))
        return KubeAPI(self.kube.api_client, request_timeout=timeout)

    def _note_error(self, err: KubeAPIError) -> None:
        self._last_error = str(err)
        log.info("leader.api_error", lease=self.lease, error=str(err))


def _record_key(lease: KubeObject) -> tuple[Any, ...]:
    """What makes a Lease record new: holder, renewTime, resourceVersion."""
    spec = lease_spec(lease)
    return (
        spec.get("holderIdentity"),
        spec.get("renewTime"),
        (lease.get("metadata") or {}).get("resourceVersion"),
    )

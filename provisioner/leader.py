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

import logging
import math
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from provisioner.kubeapi import KubeAPI, KubeAPIError, KubeConflict, KubeNotFound, KubeObject

__all__ = ["LeaderElector", "holder_identity", "lease_name", "micro_time"]

log = logging.getLogger(__name__)

RESOURCE = "leases"
_MIN_REQUEST_TIMEOUT = 0.2
"""Below this a request cannot even connect; the deadline check then decides."""
_NOT_IN_NAME = re.compile(r"[^a-z0-9.-]+")


def micro_time(moment: datetime | None = None) -> str:
    """A Kubernetes ``MicroTime``: ``2026-11-21T23:40:00.000000Z`` (UTC, microseconds)."""
    moment = (moment or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_name(provisioner_name: str) -> str:
    """The Lease name for a provisioner name, as the Go external-provisioner library
    derives it (``gluster.org/heketi`` -> ``gluster.org-heketi``), so that replicas
    serving one name share one Lease and different names never do."""
    name = _NOT_IN_NAME.sub("-", provisioner_name.lower()).strip("-.")
    if not name:
        raise ValueError(f"no Lease name can be made from {provisioner_name!r}")
    return name[:253]


def holder_identity(pod_name: str | None = None) -> str:
    """``<pod or host>_<random>``: readable in ``kubectl get lease``, and unique even
    when a restarted pod keeps its name (a restart must not inherit the old term)."""
    return f"{pod_name or socket.gethostname()}_{uuid.uuid4()}"


def _spec(lease: KubeObject | None) -> dict[str, Any]:
    return dict((lease or {}).get("spec") or {})


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
        clock: Callable[[], float] = time.monotonic,
        wait: Callable[[threading.Event, float], bool] = threading.Event.wait,
    ) -> None:
        """``clock`` and ``wait`` (wait for the event, at most that many seconds) come
        together: a fake clock's ``wait`` moves it forward, so tests run the whole
        schedule without real time passing."""
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

    # -- public --------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a LeaderElector can be started once")
        self._thread = threading.Thread(
            target=self._run, name=f"leader-election-{self.name}", daemon=True
        )
        self._thread.start()

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
            return str(_spec(self._lease).get("holderIdentity") or "")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop contending and renewing, without releasing; the lease then expires.

        ``on_stopped_leading`` has run (if this process was leading) when this returns,
        unless it is called from a callback, on the elector's own thread.
        """
        self._stop.set()
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
            if lease is None or _spec(lease).get("holderIdentity") != self.identity:
                return False
            body = self._record(lease, holder="", duration_seconds=1, acquired=False)
            try:
                written = self._bounded(self.renew_deadline).replace(RESOURCE, body, self.namespace)
            except KubeConflict:
                if not self._read_lease():
                    return False
                continue
            except KubeAPIError as err:
                log.warning("could not release lease %s/%s: %s", self.namespace, self.name, err)
                return False
            with self._lock:
                self._lease = written
            log.info("released lease %s/%s", self.namespace, self.name)
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
            except KubeAPIError as err:
                self._note_error(err)
            except Exception:  # a bug must not kill the thread silently
                log.exception("leader election for %s/%s failed", self.namespace, self.name)
            conflicts = 0
            self._wait(self._stop, self.retry_period)
        return False

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
                        "lost leadership of %s/%s: not renewed within %.1fs (%s)",
                        self.namespace,
                        self.name,
                        self.renew_deadline,
                        self._last_error or "no answer",
                    )
                    return True
                try:
                    if not self._try_acquire_or_renew(self._bounded(left)):
                        log.warning(
                            "lost leadership of %s/%s: now held by %r",
                            self.namespace,
                            self.name,
                            self.holder(),
                        )
                        return True
                    break
                except KubeConflict:
                    continue  # re-read and try again within the deadline
                except KubeAPIError as err:
                    self._note_error(err)
                except Exception as err:
                    log.exception("renewing lease %s/%s failed", self.namespace, self.name)
                    self._last_error = type(err).__name__
                self._wait(self._stop, max(0.0, min(self.retry_period, deadline - self._clock())))
                if self._stop.is_set():
                    return False

    def _started(self) -> None:
        log.info("became leader of %s/%s as %s", self.namespace, self.name, self.identity)
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
            log.exception("leader election callback %s failed", what)

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
        spec = _spec(lease)
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
        spec = _spec(lease)
        key = (
            spec.get("holderIdentity"),
            spec.get("renewTime"),
            (lease.get("metadata") or {}).get("resourceVersion"),
        )
        with self._lock:
            self._lease = lease
            if key != self._observed:
                self._observed = key
                self._observed_at = self._clock()

    def _expired(self, spec: dict[str, Any]) -> bool:
        duration = spec.get("leaseDurationSeconds")
        seconds = float(duration) if isinstance(duration, int) and duration > 0 else None
        with self._lock:
            observed_at = self._observed_at
        return self._clock() >= observed_at + (seconds or self.lease_duration)

    def _record(
        self,
        lease: KubeObject | None,
        *,
        holder: str,
        acquired: bool,
        duration_seconds: int | None = None,
    ) -> KubeObject:
        """The lease body to write: ``lease`` (kept metadata) with a new spec."""
        now = micro_time()
        spec = _spec(lease)
        transitions = int(spec.get("leaseTransitions") or 0)
        if acquired and lease is not None:
            transitions += 1  # a change of holder (a released lease too), as client-go counts
        spec.update(
            holderIdentity=holder,
            leaseDurationSeconds=duration_seconds or max(1, math.ceil(self.lease_duration)),
            renewTime=now,
            leaseTransitions=transitions,
        )
        if acquired or not spec.get("acquireTime"):
            spec["acquireTime"] = now
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if lease is not None:
            old = lease.get("metadata") or {}
            for key in ("resourceVersion", "uid", "labels", "annotations"):
                if old.get(key) is not None:
                    metadata[key] = old[key]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    def _bounded(self, seconds: float) -> KubeAPI:
        """The same connection pool, with a request timeout that ends by ``seconds``."""
        timeout = max(_MIN_REQUEST_TIMEOUT, min(seconds, self.kube.request_timeout))
        return KubeAPI(self.kube.api_client, request_timeout=timeout)

    def _note_error(self, err: KubeAPIError) -> None:
        self._last_error = str(err)
        log.info("leader election %s/%s: %s", self.namespace, self.name, err)

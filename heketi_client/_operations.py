"""Heketi's asynchronous operations, followed to the end so callers never see a 202.

Protocol: the mutating call answers 202 with ``Location: /queue/<id>``. Polling that
path gives 200 + ``X-Pending`` while it runs, then once (the entry is removed when
reported) 303 to the resulting resource, 204 when there is none, or 500 with the
error text. A 404 on the queue means the result was lost (the entry was reported to a
poll whose answer we never got, or Heketi restarted), so the outcome is unknown.

Polling schedule. Heketi's own clients poll every 0.4 s (Go) or 1 s (Python), which
adds up to that much latency to every operation. We poll first after
``PollPolicy.first_delay`` (0.03 s), then at intervals growing by ``factor`` (1.5) up
to ``max_interval`` (1 s): the overshoot stays around a third of the time waited so far,
and the poll count only grows with the logarithm of the duration. On top of that, a
``LatencyEstimator`` keeps a moving average of how long each kind of operation took;
when it knows one, the first poll is at ``estimate_lead`` (1.0) of that estimate, then
polls come every ``fine_step`` (2%) of the estimate until (2 - lead) times it, and grow
from there. The estimate is the midpoint between the last "pending" and the first
"done" poll; when the very first poll already finds the operation done (nothing
brackets the end), the estimate is lowered by ``settle`` (a tenth) of a fine step.
So it creeps down until a first poll is early, and the midpoint pulls it back up:
most first polls land just after the end, one poll per operation most of the time
(bench/throughput.py: 0.95 lead and no settling gave 2.6 polls per create; this
gives about 1.2, at the same ratio to Heketi's lower bound).

Both ``Location`` headers (the 202's queue entry and the 303's resource) go through
``Transport.resolve_location``: one pointing at another server is refused with
``ForeignLocation``, an ``OutcomeUnknown``, since Heketi had accepted the request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import requests

from heketi_client._transport import Transport
from heketi_client.errors import (
    HeketiError,
    OperationFailed,
    OperationTimeout,
    OutcomeUnknown,
    _describe_body,
)

MIN_STEP = 0.005
"""Shortest wait between polls once an estimate is known (seconds)."""

log = logging.getLogger(__name__)

QUEUE_ANSWERS = frozenset({200, 204, 303, 404, 500})
"""Queue statuses that carry the operation's state rather than a failed poll."""


@dataclass(frozen=True, kw_only=True)
class PollPolicy:
    """How to poll the queue (seconds); see the module docstring for the reasoning.

    first_delay: wait before the first poll of an operation kind not seen yet (0.03).
    factor: growth of the wait from one poll to the next (1.5).
    max_interval: cap on any wait between polls (1.0).
    estimate_lead: with a learned duration d, the first poll comes at lead * d (1.0).
    fine_step: after that, polls are fine_step * d apart (0.02, at least ``MIN_STEP``)
        up to (2 - estimate_lead) * d (at least one fine step), then grow by ``factor``.
    learning_rate: weight of the newest duration in the moving average (0.3).
    settle: when the first poll already finds the operation done, the estimate is
        lowered by settle * fine_step * d (0.1); 0 keeps it.
    """

    first_delay: float = 0.03
    factor: float = 1.5
    max_interval: float = 1.0
    estimate_lead: float = 1.0
    fine_step: float = 0.02
    learning_rate: float = 0.3
    settle: float = 0.1

    def __post_init__(self) -> None:
        if self.first_delay <= 0 or self.max_interval < self.first_delay or self.factor < 1:
            raise ValueError("need 0 < first_delay <= max_interval and factor >= 1")
        if not 0 < self.estimate_lead <= 1 or not 0 < self.learning_rate <= 1:
            raise ValueError("estimate_lead and learning_rate must be within (0, 1]")
        if not 0 < self.fine_step <= 1:
            raise ValueError("fine_step must be within (0, 1]")
        if not 0 <= self.settle <= 1:
            raise ValueError("settle must be within [0, 1]")

    def delays(self, estimate: float | None) -> Iterator[float]:
        """Waits before each poll, endless; the caller stops at its deadline."""
        delay = self.first_delay
        if estimate is not None and estimate * self.estimate_lead > self.first_delay:
            # Even steps across a window centred on the estimate, then grow as usual.
            at = estimate * self.estimate_lead
            yield at
            delay = min(max(MIN_STEP, estimate * self.fine_step), self.max_interval)
            window_end = max(estimate * (2 - self.estimate_lead), at + 2 * delay)
            while at + delay < window_end:
                at += delay
                yield delay
        while True:
            yield delay
            delay = min(delay * self.factor, self.max_interval)


class LatencyEstimator:
    """Exponentially weighted mean duration per operation kind; safe across threads.

    The client uses four kinds, but ``kind`` is any string a caller passes, so at most
    ``max_kinds`` are remembered (the least recently used is forgotten): a caller
    that made kinds up per volume would otherwise grow this without end.
    """

    def __init__(self, learning_rate: float = 0.3, *, max_kinds: int = 16) -> None:
        if max_kinds < 1:
            raise ValueError("max_kinds must be at least 1")
        self._rate = learning_rate
        self._max_kinds = max_kinds
        self._means: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def estimate(self, kind: str) -> float | None:
        with self._lock:
            mean = self._means.get(kind)
            if mean is not None:
                self._means.move_to_end(kind)
            return mean

    def observe(self, kind: str, seconds: float) -> None:
        with self._lock:
            old = self._means.get(kind)
            self._means[kind] = seconds if old is None else old + self._rate * (seconds - old)
            self._means.move_to_end(kind)
            while len(self._means) > self._max_kinds:
                self._means.popitem(last=False)

    def lower(self, kind: str, seconds: float) -> None:
        """Take ``seconds`` off a known estimate (never below zero); nothing if unknown."""
        with self._lock:
            mean = self._means.get(kind)
            if mean is not None:
                self._means[kind] = max(0.0, mean - seconds)

    def kinds(self) -> tuple[str, ...]:
        """The kinds remembered, least recently used first."""
        with self._lock:
            return tuple(self._means)


class OperationFollower:
    """Turns an accepted (202) response into the final one, or an exception."""

    def __init__(
        self,
        transport: Transport,
        *,
        policy: PollPolicy,
        timeout: float,
        estimator: LatencyEstimator | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.transport = transport
        self.policy = policy
        self.timeout = timeout
        self.estimator = estimator or LatencyEstimator(policy.learning_rate)
        self._clock = clock
        self._sleep = sleep

    def follow(
        self,
        accepted: requests.Response,
        *,
        kind: str,
        method: str,
        path: str,
        on_finished: Callable[[], None] | None = None,
    ) -> requests.Response | None:
        """Wait for the operation; return the resource's GET response, or None (204).

        ``method`` and ``path`` are the request Heketi accepted, for messages.
        ``on_finished`` is called once Heketi says the operation ended (any outcome),
        before its result is read: a caller limiting operations in flight can let the
        next one start without waiting for that read.
        """
        offered = accepted.headers.get("Location")
        if not offered:
            raise OutcomeUnknown(
                f"Heketi accepted the {kind} but gave no queue Location",
                method=method,
                path=path,
                status=accepted.status_code,
            )
        location = self.transport.resolve_location(
            offered, method=method, path=path, status=accepted.status_code
        )
        started = self._clock()
        deadline = started + self.timeout
        last_pending = started
        polls = 0
        estimate = self.estimator.estimate(kind)
        for delay in self.policy.delays(estimate):
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise OperationTimeout(
                    f"the {kind} was still pending after {self.timeout:g} s "
                    f"(queue entry {location})",
                    location=location,
                    method=method,
                    path=path,
                )
            self._sleep(min(delay, remaining))
            answer = self._poll(location, kind)
            polls += 1
            polled = self._clock()
            if answer.status_code == 200 and "X-Pending" in answer.headers:
                last_pending = polled
                continue
            if answer.status_code in (204, 303, 500):
                if on_finished is not None:
                    on_finished()
                if polls == 1 and estimate is not None:
                    # Done at the first poll: it ended somewhere before; only nudge.
                    policy = self.policy
                    self.estimator.lower(kind, policy.settle * policy.fine_step * estimate)
                else:
                    self.estimator.observe(kind, (last_pending + polled) / 2 - started)
            log.debug(
                "heketi operation %s ended: %s after %d polls, %.3f s",
                kind,
                answer.status_code,
                polls,
                polled - started,
                extra={
                    "kind": kind,
                    "status": answer.status_code,
                    "polls": polls,
                    "seconds": round(polled - started, 3),
                },
            )
            return self._finish(answer, location, kind)
        raise AssertionError("PollPolicy.delays is endless")  # pragma: no cover

    def _poll(self, location: str, kind: str) -> requests.Response:
        try:
            return self.transport.send("GET", location, idempotent=True, accept=QUEUE_ANSWERS)
        except HeketiError as error:
            raise OutcomeUnknown(
                f"Heketi accepted the {kind}, but polling {location} failed: {error}",
                method="GET",
                path=location,
                status=error.status,
            ) from error

    def _finish(
        self, answer: requests.Response, location: str, kind: str
    ) -> requests.Response | None:
        status = answer.status_code
        if status == 204:
            return None
        if status == 303:
            offered = answer.headers.get("Location")
            if not offered:
                raise OutcomeUnknown(
                    f"the {kind} finished but Heketi named no resource",
                    method="GET",
                    path=location,
                    status=status,
                )
            target = self.transport.resolve_location(
                offered, method="GET", path=location, status=status
            )
            try:
                return self.transport.send("GET", target, idempotent=True)
            except HeketiError as error:
                raise OutcomeUnknown(
                    f"the {kind} finished but reading {target} failed: {error}",
                    method="GET",
                    path=target,
                    status=error.status,
                ) from error
        if status == 500:
            raise OperationFailed(
                _describe_body(answer, self.transport.where),
                method="GET",
                path=location,
                status=status,
            )
        if status == 404:
            raise OutcomeUnknown(
                f"Heketi lost the result of the {kind} ({location} answered 404: "
                f"{_describe_body(answer, self.transport.where)})",
                method="GET",
                path=location,
                status=status,
            )
        # 200 without X-Pending: Heketi never does this; take the body as the result.
        return answer

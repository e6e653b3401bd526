"""When a failed request may be sent again, and how long to wait first.

The rule that matters: a request that may have changed something is never re-sent
unless we know Heketi did not act on it. So

* 429 (Heketi refused before doing anything) and a connection that never opened are
  retried for every method;
* a 503 is retried for every method too when it is Heketi's own (maintenance mode,
  answered before doing anything); any other 503 on a creating POST may come from a
  proxy that had already passed the request on, so the transport turns it into
  ``OutcomeUnknown`` like a 502/504;
* dropped connections, read timeouts and the other 5xx are retried only for
  idempotent requests. GETs are; ``DELETE /volumes/{id}`` counts as idempotent because
  sending it twice cannot remove more than once, and a 404 on the repeat is reported as
  ``NotFound``, which the caller treats as done. POSTs that create, expand or clone are
  not: those failures surface as ``OutcomeUnknown`` (raised by the transport).

Waits grow exponentially up to a cap, with part of each wait randomised so that
clients throttled together do not come back together. Heketi sends no Retry-After;
if a proxy does, it is honoured, unless it is longer than the cap, in which case the
``Throttled`` error goes to the caller, whose own queue can wait that long.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from heketi_client.errors import (
    HeketiAPIError,
    HeketiConnectionError,
    HeketiTimeout,
    Throttled,
)

RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})
"""Statuses retried on idempotent requests (503 is retried on every request)."""


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Retry limits for one HTTP request (a whole async operation has its own deadline).

    attempts: tries in all, the first included (default 5).
    backoff: seconds before the first retry (default 0.5).
    factor: growth of the wait per retry (default 2).
    max_backoff: cap on any single wait, Retry-After included (default 30 s).
    jitter: share of each wait that is random, 0..1 (default 0.5: a wait of w becomes
        uniform in [w/2, w]).
    """

    attempts: int = 5
    backoff: float = 0.5
    factor: float = 2.0
    max_backoff: float = 30.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.backoff < 0 or self.max_backoff < 0 or self.factor < 1:
            raise ValueError("backoff and max_backoff must be >= 0 and factor >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within 0..1")

    def should_retry(self, error: BaseException, *, idempotent: bool) -> bool:
        """Whether ``error`` (already mapped to our tree) may be followed by a resend."""
        if isinstance(error, Throttled):
            return error.retry_after is None or error.retry_after <= self.max_backoff
        if isinstance(error, HeketiConnectionError):
            return idempotent or not error.request_sent
        if isinstance(error, HeketiTimeout):
            return idempotent
        if isinstance(error, HeketiAPIError):
            if error.status == 503:
                return True
            return idempotent and error.status in RETRYABLE_STATUSES
        return False

    def wait(self, failed_attempts: int, error: BaseException | None, rng: random.Random) -> float:
        """Seconds to wait after ``failed_attempts`` tries (1 after the first failure)."""
        if isinstance(error, Throttled) and error.retry_after is not None:
            return min(error.retry_after, self.max_backoff)
        base = min(self.max_backoff, self.backoff * self.factor ** max(0, failed_attempts - 1))
        return base - rng.uniform(0, base * self.jitter)

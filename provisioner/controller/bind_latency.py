"""Claim-to-Bound latency: what a user waits for, from ``kubectl apply`` to a usable claim.

The provisioning duration metric stops when our PV is written; the binder still has
to bind it. This measures the whole wait, from the claim's ``creationTimestamp`` to
the moment this controller's cache shows it Bound to the PV we wrote for it.

Only claims this process started to provision are timed (``expect``), so a restart
next to thousands of long-bound claims does not record their age as latency; each
is observed once and then dropped, and deleted claims are dropped too, so memory
holds at most the claims in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from prometheus_client import Histogram


def _created_at(claim: dict[str, Any]) -> datetime | None:
    raw = (claim.get("metadata") or {}).get("creationTimestamp")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


class BindTimer:
    """Thread-safe: workers call ``expect``, the claim informer calls ``observe``."""

    def __init__(
        self,
        histogram: Histogram,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._histogram = histogram
        self._now = now
        self._lock = threading.Lock()
        self._expected: dict[str, tuple[str, str]] = {}  # uid -> (PV name, class)

    def expect(self, uid: str, pv_name: str, class_name: str) -> None:
        """Before the PV is created: the Bound update may arrive before create returns."""
        with self._lock:
            self._expected[uid] = (pv_name, class_name)

    def forget(self, uid: str) -> None:
        with self._lock:
            self._expected.pop(uid, None)

    def pending(self) -> int:
        with self._lock:
            return len(self._expected)

    def observe(self, claim: dict[str, Any]) -> bool:
        """Record the latency if ``claim`` is now Bound to the PV we wrote; True if it was."""
        if (claim.get("status") or {}).get("phase") != "Bound":
            return False
        uid = str((claim.get("metadata") or {}).get("uid"))
        volume = (claim.get("spec") or {}).get("volumeName")
        with self._lock:
            expected = self._expected.get(uid)
            if expected is None or expected[0] != volume:
                return False
            del self._expected[uid]
        created = _created_at(claim)
        if created is None:
            return False
        seconds = max(0.0, (self._now() - created).total_seconds())
        self._histogram.labels(**{"class": expected[1]}).observe(seconds)
        return True

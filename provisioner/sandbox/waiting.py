"""Waiting on a condition with a deadline: the one way tests, the demo and the
benchmarks synchronise with the controller, which runs in other threads or processes.

A bare sleep would either waste time or be too short on a loaded machine; polling a
condition ends as soon as it holds and fails with a message naming what never
happened. The interval only paces the polling; nothing depends on its length.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """The condition did not hold in time (an AssertionError, so tests report it as a
    failed expectation rather than an error)."""


def wait_for(
    probe: Callable[[], T | None],
    timeout: float = 30.0,
    what: str = "condition",
    *,
    interval: float = 0.02,
    error: type[Exception] = WaitTimeout,
) -> T:
    """Return ``probe()``'s first truthy value; raise ``error`` once ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise error(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)

"""Serve a sandbox from the command line until SIGTERM or Ctrl-C (both ``__main__``)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable


def serve_until_stopped(
    start: Callable[[], str],
    stop: Callable[[], None],
    banner: Callable[[str], Iterable[str]],
) -> int:
    """``start()`` (returns the URL), print ``banner(url)`` line by line (flushed: a
    parent process reads it to learn the address), wait for SIGTERM or Ctrl-C, then
    ``stop()``; returns the exit status."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    url = start()
    for line in banner(url):
        print(line, flush=True)
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop()
    return 0

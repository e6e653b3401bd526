"""``Hold``: one request stopped at an exact step until the test lets it go on.

Shared by both sandboxes' fault injection (``heketi.faults``, ``kube.faults``).
"""

from __future__ import annotations

import threading


class Hold:
    """One held request: ``reached`` is set when it arrives; it waits for ``release``.

    Unlike a timed hang, the test decides when the request goes on, and learns when it
    got there: enough to kill a client at an exact step ("POST /volumes sent, not yet
    accepted", or with ``after_effect`` "the PV is saved but the answer not yet
    received"), and then choose what the server does with the orphaned request.
    """

    def __init__(self, after_effect: bool) -> None:
        self.after_effect = after_effect
        self.reached = threading.Event()
        self._released = threading.Event()
        self._proceed = True

    def wait_reached(self, timeout: float) -> bool:
        return self.reached.wait(timeout)

    def release(self, *, proceed: bool = True) -> None:
        """Let the request go on; ``proceed=False`` refuses it without applying it (the
        Heketi sandbox closes the connection, the Kubernetes one answers 503); only
        meaningful without ``after_effect``."""
        self._proceed = proceed
        self._released.set()

    def block(self, stop: threading.Event) -> bool:
        """Called by the server: signal arrival, wait for release (or ``stop``: the
        server stopping or going down); True if the request should go on."""
        self.reached.set()
        while not self._released.wait(0.1):
            if stop.is_set():
                return False
        return self._proceed

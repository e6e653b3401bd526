"""The Heketi keys read from Secrets, kept for a short while.

Every provision (and every delete) needs the key in the Secret its StorageClass (or
PV) names. Reading it each time is one API request per claim, 2,000 in a burst of
2,000 claims, all for the same object. Watching Secrets would avoid it but needs
RBAC to watch every Secret in those namespaces; a cache with a short time to live
needs nothing more than the ``get`` already granted.

What makes a stale key harmless: Heketi refuses it (401). On that answer the
caller ``invalidate``s the entry and reads the Secret again at once (see
``GlusterProvisioner`` and ``VolumeDeleter``), so a rotated key costs one refused
request, not a TTL of failures. Only keys that were read successfully are kept:
a missing or malformed Secret is read again on the next attempt, so fixing it
takes effect at once.

Trust is unchanged: the namespace and name come from the StorageClass or the PV
(admin-written), never from the claim; the cache is keyed by exactly those, so a
tenant cannot make one class's key serve another Secret's name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from provisioner.gluster.credentials import read_secret_key
from provisioner.k8s.kubeapi import KubeAPI

__all__ = ["DEFAULT_SECRET_TTL", "KeyReader", "SecretKeys"]

KeyReader = Callable[[str, str, str], str]
"""(namespace, name, named_by) → the key; raises naming what is wrong."""

DEFAULT_SECRET_TTL = 30.0
"""Seconds a key read from a Secret is used without reading the Secret again."""


class SecretKeys:
    """Keys by (namespace, name), each for ``ttl`` seconds; safe across threads.

    Concurrent misses of one Secret make one read (the others wait for it): a burst
    of claims of one class starts with one GET, not one per worker.
    """

    def __init__(
        self,
        kube: KubeAPI,
        *,
        ttl: float = DEFAULT_SECRET_TTL,
        clock: Callable[[], float] = time.monotonic,
        reader: KeyReader | None = None,
    ) -> None:
        """``reader``: how a key is read and checked (block classes accept their own
        Secret type too); file classes' ``read_secret_key`` by default."""
        self.kube = kube
        self._reader: KeyReader = reader or (
            lambda namespace, name, named_by: read_secret_key(
                kube, namespace, name, named_by=named_by
            )
        )
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[tuple[str, str], tuple[str, float]] = {}  # -> key, read at
        self._reading: dict[tuple[str, str], threading.Lock] = {}
        self.reads = 0
        """API reads made (tests and the benchmarks count them)."""

    def read(self, namespace: str, name: str, *, named_by: str) -> str:
        """The key in Secret ``namespace/name``: cached, or read (and then cached).

        Raises as ``read_secret_key`` does; failures are not cached.
        """
        where = (namespace, name)
        with self._lock:
            found = self._fresh(where)
            if found is not None:
                return found
            gate = self._reading.setdefault(where, threading.Lock())
        with gate:
            with self._lock:
                found = self._fresh(where)
                if found is not None:
                    return found
            self.reads += 1
            key = self._reader(namespace, name, named_by)
            with self._lock:
                self._keys[where] = (key, self._clock())
            return key

    def _fresh(self, where: tuple[str, str]) -> str | None:
        entry = self._keys.get(where)
        if entry is None:
            return None
        key, read_at = entry
        if self._clock() - read_at >= self.ttl:
            del self._keys[where]
            return None
        return key

    def invalidate(self, namespace: str | None, name: str | None) -> bool:
        """Forget the key of this Secret (Heketi refused it); True if one was kept."""
        if not namespace or not name:
            return False
        with self._lock:
            return self._keys.pop((namespace, name), None) is not None

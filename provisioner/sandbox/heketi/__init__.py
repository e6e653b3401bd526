"""A Heketi v10 simulator: the REST API, JWT auth, async operations, throttling,
brick allocation and fault injection, served over loopback HTTP.

Every claim the project makes about Heketi is tested against this package, so it
follows /work/shared/heketi-api.md closely. Use::

    with HeketiSimulator(admin_key="...", latency=0.2) as sim:
        requests.get(sim.url + "/hello")

or run ``python -m provisioner.sandbox.heketi --admin-key KEY``.

Where Heketi's behaviour had to be guessed, the choice is stated here:

- Several clusters all failing: the 500 text is ``Failed to allocate new volume:
  Unable to create volume on any cluster:`` followed by one ``Cluster <id>: <reason>``
  line per cluster, in the order tried (Heketi's prefix wording is a guess).
- Delete/expand/clone of a volume with an operation pending: 500 with Heketi's
  ErrConflict text ``The target exists, contains other items, or is in use.``.
  Volumes being deleted or expanded are hidden like volumes being created.
- A known path with the wrong method answers 405 with an empty body (gorilla/mux).
- Malformed tokens: ``Invalid JWT token: token contains an invalid number of
  segments`` / ``token is malformed``; an ``nbf`` in the future: ``Token is not
  valid yet``.
- ``GET /operations``: ``total`` = ``in_flight`` = operations not yet finished;
  ``stale``, ``failed`` and ``new`` stay 0 (nothing is left half-done).
- ``down()`` keeps state and lets in-flight operations finish, like a network outage,
  not a restart (a real restart would also forget the queue).
- Placement: the device ring alternates zones, then nodes, then devices; each brick
  set starts at a random point of it (seedable). Zone checking is never ``strict``.
"""

from .faults import Faults
from .server import RequestRecord
from .simulator import HeketiSimulator

__all__ = ["Faults", "HeketiSimulator", "RequestRecord"]

"""A Heketi v10 simulator: the REST API, JWT auth, async operations, throttling,
brick allocation and fault injection, served over loopback HTTP.

Every claim the project makes about Heketi is tested against this package, so it
follows heketi-api.md closely; where Heketi's behaviour had to be guessed, the module
docstrings say so.
"""

from .faults import Faults
from .server import RequestRecord
from .simulator import HeketiSimulator

__all__ = ["Faults", "HeketiSimulator", "RequestRecord"]

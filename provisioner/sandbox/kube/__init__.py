"""In-memory Kubernetes API server for end-to-end tests and the sandbox command.

``KubeSandbox`` is the public entry point; see ``sandbox.py``.
"""

from .request_log import RequestRecord
from .sandbox import KubeSandbox

__all__ = ["KubeSandbox", "RequestRecord"]

"""Where the node bed keeps its state: fixed places (not a test's temporary directory),
so that a later run, or ``python -m testbeds.node down``, finds and removes what a
killed run left behind.

- ``root()`` (``$HEKETI_PROVISIONER_NODE_DIR``, default ``/var/lib/hpnode``): the
  kubelet's root directory, containerd's root (images, snapshots), CNI's IP
  allocations, configuration, logs, and ``saved-sysctls.json``.
- ``RUN``: containerd's state and sockets, runc's state, the pods' network namespaces
  (short paths: a unix socket's path is limited to 107 bytes).
- ``CGROUP``: the cgroup under which the kubelet puts every pod (``cgroupRoot``), in
  each cgroup v1 hierarchy.
"""

from __future__ import annotations

import os
from pathlib import Path

RUN = Path("/run/hpnode")
CGROUP = "hpnode"
CGROUP_MOUNT = Path("/sys/fs/cgroup")
# The kubelet 1.25 writes pod logs here (not configurable until 1.29's podLogsDir).
POD_LOGS = Path("/var/log/pods")
CONTAINER_LOG_LINKS = Path("/var/log/containers")
# containerd 1.6's shims put their sockets here whatever containerd's state dir is.
SHIM_SOCKETS = Path("/run/containerd/s")


def root() -> Path:
    return Path(os.environ.get("HEKETI_PROVISIONER_NODE_DIR") or "/var/lib/hpnode").resolve()


def containerd_socket() -> Path:
    return RUN / "containerd.sock"


def kubelet_dir() -> Path:
    return root() / "kubelet"


def lock_file() -> Path:
    return Path("/run/hpnode.lock")

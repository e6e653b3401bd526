"""Every setting of the controller, in one frozen dataclass.

The CLI builds one ``Settings`` from flags and ``HEKETI_PROVISIONER_*`` variables;
nothing else reads the environment, so what a process runs with is visible in
one place (and in its start-up log line). A value that cannot work raises
``SettingsError`` naming the field, which the CLI turns into one line naming the
flag or variable it came from.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_HEKETI_CONCURRENCY",
    "DEFAULT_PROVISIONER_NAME",
    "DEFAULT_WORKERS",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "Settings",
    "SettingsError",
    "parse_address",
]

DEFAULT_PROVISIONER_NAME = "gluster.org/heketi"
DEFAULT_BLOCK_PROVISIONER_NAME = "gluster.org/glusterblock"
# Heketi's own default limit of in-flight operations is 8; stay at or below it.
DEFAULT_HEKETI_CONCURRENCY = 8
# Workers outnumber the Heketi cap so that cheap work (skips, deletes of gone
# volumes, events) never waits behind claims blocked on Heketi.
DEFAULT_WORKERS = 16
LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")


class SettingsError(ValueError):
    """A setting that cannot work; ``field`` is the ``Settings`` field."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def parse_address(address: str) -> tuple[str, int] | None:
    """``HOST:PORT`` / ``:PORT`` → (host, port); ``0`` or empty → None (disabled)."""
    address = address.strip()
    if address in ("", "0"):
        return None
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"metrics address {address!r} is not HOST:PORT")
    return (host.strip("[]") or "0.0.0.0"), int(port)


@dataclass(frozen=True)
class Settings:
    kubeconfig: str | None = None
    """Path of a kubeconfig file; None means the pod's in-cluster service account."""

    provisioner_name: str = DEFAULT_PROVISIONER_NAME
    """StorageClass ``provisioner`` value we serve.  Default ``gluster.org/heketi``;
    ``kubernetes.io/glusterfs`` adopts what the in-tree provisioner created."""

    block_provisioner_name: str = DEFAULT_BLOCK_PROVISIONER_NAME
    """Second name served by the same process: gluster-block volumes as iSCSI PVs.
    Default ``gluster.org/glusterblock`` (the retired external provisioner's, so its
    classes and PVs are taken over); empty turns block volumes off."""

    workers: int = DEFAULT_WORKERS
    """Worker threads handling claims and volumes.  Default 16 (>= heketi_concurrency)."""

    heketi_concurrency: int = DEFAULT_HEKETI_CONCURRENCY
    """Heketi operations in flight at once, across all workers.  Default 8."""

    resync_period: float = 300.0
    """Seconds between re-examining every cached claim and volume.  Default 300."""

    backoff_base: float = 0.5
    """Seconds before the first retry of a failed claim/volume; doubles per failure."""

    backoff_cap: float = 300.0
    """Upper bound of the retry delay, seconds.  Default 300."""

    request_timeout: float = 30.0
    """Seconds allowed for one Kubernetes API request (not a watch).  Default 30."""

    watch_timeout: int = 300
    """Server-side ``timeoutSeconds`` of each watch; silence beyond it reconnects."""

    assume_glusterfs_plugin: bool = False
    """Provision even when the API server is 1.26+ (whose kubelets cannot mount
    glusterfs volumes) — for clusters with patched kubelets.  Default off."""

    metrics_address: str = ":8080"
    """HOST:PORT for /metrics, /healthz, /readyz; ``0`` or empty disables it."""

    log_format: str = "auto"
    """``json``, ``console``, or ``auto`` (console on a terminal, JSON otherwise)."""

    log_level: str = "info"
    """``debug``, ``info``, ``warning`` or ``error``."""

    shutdown_grace: float = 30.0
    """Seconds in-flight work may take to finish after SIGTERM/SIGINT."""

    orphan_sweep_period: float = 600.0
    """Seconds between sweeps for Heketi volumes no claim or PV accounts for (left by
    a crash before the PV was written); the first runs right after start.  0 disables."""

    orphan_grace_seconds: float = 10.0
    """An orphaned intent record (claim gone, no PV) is acted on only if an earlier
    sweep, at least this long ago, saw it orphaned too: covers a PV write a process
    sent just before it died (see ``provisioner.orphans``).  Default 10."""

    heketi_timeout: float = 30.0
    """Seconds Heketi may take to answer one HTTP request (connecting gets at most 5 of
    them).  Operations themselves are followed through the queue, so this bounds one
    exchange, not a whole create.  Default 30."""

    leader_election_lease_duration: float = 15.0
    """Seconds a Lease stays valid without renewal: how long a standby waits after the
    leader died without releasing it.  The leader gives up after 2/3 of it without a
    successful renewal, and renews every 2/15 of it.  Default 15."""

    pv_finalizer: bool = True
    """Put our finalizer on every PV we write, so a PV is not removed before its Heketi
    volume is gone (``--no-pv-finalizer`` turns it off: a PV deleted directly then
    leaves its volume behind, as with the in-tree provisioner).  Default on."""

    namespace: str = "default"
    """The controller's own namespace (``$POD_NAMESPACE`` in a pod): the leader Lease
    and the intent records live there. Only cluster admins may write it; everything
    in a claim's namespace is tenant-written and never trusted.  Default ``default``."""

    stuck_worker_seconds: float = 1800.0
    """``/healthz`` fails when a worker has spent longer than this on one item (every
    Heketi request and operation has its own timeout, so this is generous).  Default
    1800."""

    def __post_init__(self) -> None:
        for name, problem in self._problems():
            raise SettingsError(name, problem)

    def _problems(self) -> list[tuple[str, str]]:
        found = []
        if self.workers < 1:
            found.append(("workers", "must be at least 1"))
        if self.heketi_concurrency < 1:
            found.append(("heketi_concurrency", "must be at least 1"))
        if self.backoff_base <= 0:
            found.append(("backoff_base", "must be > 0"))
        if self.backoff_cap < self.backoff_base:
            found.append(("backoff_cap", "must be >= backoff_base"))
        if self.log_format not in LOG_FORMATS:
            found.append(("log_format", "must be json, console or auto"))
        if self.log_level not in LOG_LEVELS:
            found.append(("log_level", "must be debug, info, warning or error"))
        if self.resync_period <= 0:
            found.append(("resync_period", "must be > 0"))
        for name in ("shutdown_grace", "orphan_sweep_period", "orphan_grace_seconds"):
            if getattr(self, name) < 0:
                found.append((name, "must be >= 0"))
        if self.heketi_timeout <= 0:
            found.append(("heketi_timeout", "must be > 0"))
        if self.leader_election_lease_duration < 3:
            found.append(("leader_election_lease_duration", "must be at least 3 seconds"))
        if not self.provisioner_name:
            found.append(("provisioner_name", "must not be empty"))
        if self.block_provisioner_name and self.block_provisioner_name == self.provisioner_name:
            found.append(("block_provisioner_name", "must differ from provisioner_name"))
        try:
            parse_address(self.metrics_address)
        except ValueError:
            found.append(("metrics_address", f"{self.metrics_address!r} is not HOST:PORT"))
        return found

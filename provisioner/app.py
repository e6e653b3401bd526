"""Build the controller from ``Settings`` and run it: the one wiring of the process.

settings → Kubernetes client → caches → the Gluster backends (file volumes under
``--provisioner-name``, block volumes under ``--block-provisioner-name``) → controller; then
``run`` adds the health server, leader election and the signal handling. The
sandbox stack builds its controller here too, so that what works there is what
``heketi-provisioner run`` does.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import NoReturn

import structlog

from provisioner.config import Settings
from provisioner.controller.backends import Backends
from provisioner.controller.caches import Caches
from provisioner.controller.contract import Provisioner
from provisioner.controller.loop import Controller
from provisioner.gluster.block.objects import block_volume_id
from provisioner.gluster.block.provisioner import BlockProvisioner
from provisioner.gluster.provisioner import GlusterProvisioner
from provisioner.gluster.volume_owners import VolumeOwners, file_volume_id
from provisioner.k8s.errors import KubeForbidden
from provisioner.k8s.kubeapi import KubeAPI, load_api_client
from provisioner.k8s.leader import LeaderElector
from provisioner.k8s.leases import holder_identity, lease_name
from provisioner.observability import Metrics, start_health_server

__all__ = ["build_controller", "leader_elector", "run", "stop_on_signals"]

log = structlog.get_logger(__name__)


def build_controller(settings: Settings) -> Controller:
    """settings → Kubernetes client → caches → provisioner → controller."""
    kube = KubeAPI(load_api_client(settings.kubeconfig), request_timeout=settings.request_timeout)
    caches = Caches(kube, settings)
    metrics = Metrics()
    # Which PV names which Heketi volume (file or block), from the PV cache: every
    # answer from Heketi is checked against it before a PV is written (answers).
    owners = VolumeOwners((file_volume_id, block_volume_id))
    owners.attach(caches.pvs)
    provisioner = GlusterProvisioner(
        kube=kube,
        provisioner_name=settings.provisioner_name,
        class_lookup=caches.storage_class,
        heketi_concurrency=settings.heketi_concurrency,
        orphan_grace_seconds=settings.orphan_grace_seconds,
        heketi_timeout=(min(5.0, settings.heketi_timeout), settings.heketi_timeout),
        heketi_observer=metrics.observe_heketi,
        intent_namespace=settings.namespace,
        assume_glusterfs_plugin=settings.assume_glusterfs_plugin,
        volume_owners=owners,
    )
    backend: Provisioner = provisioner
    if settings.block_provisioner_name:
        block = BlockProvisioner(
            kube=kube,
            provisioner_name=settings.block_provisioner_name,
            class_lookup=caches.storage_class,
            # One pool: the cap on operations per Heketi server covers both kinds.
            pool=provisioner.pool,
            intent_namespace=settings.namespace,
            orphan_grace_seconds=settings.orphan_grace_seconds,
            volume_owners=owners,
        )
        backend = Backends({settings.provisioner_name: provisioner, block.provisioner_name: block})
    return Controller(kube, backend, settings, caches=caches, metrics=metrics)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT."""
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def run(
    settings: Settings,
    *,
    leader_election: bool = True,
    exit_hard: Callable[[int], NoReturn] = os._exit,
) -> int:
    """Run until SIGTERM/SIGINT (or a lost Lease); the process's exit status.

    Raises ``KubeForbidden`` when a startup request (the Lease, the first list of a
    cache) is refused: the operator must grant the permission, no retry can.
    """
    stop = stop_on_signals()
    controller = build_controller(settings)
    lost = threading.Event()
    refused: list[KubeForbidden] = []

    def forbidden(err: KubeForbidden) -> None:
        refused.append(err)
        stop.set()

    elector = (
        None
        if not leader_election
        else leader_elector(
            controller, settings, stop, lost, exit_hard=exit_hard, on_forbidden=forbidden
        )
    )

    def ready() -> bool:
        # A standby is ready by design: a rollout waits for Ready pods, and only one
        # replica can ever lead.
        if elector is None or elector.is_leader():
            return controller.ready()
        return not stop.is_set()

    def problems() -> list[str]:
        found = controller.problems()
        if elector is not None and not elector.running() and not stop.is_set():
            found.append("leader election thread ended")
        return found

    health = start_health_server(
        settings.metrics_address, metrics=controller.metrics, ready=ready, problems=problems
    )
    if elector is None:
        try:
            controller.start()
            controller.metrics.leader.set(1)  # without election this replica acts as leader
        except KubeForbidden as err:
            forbidden(err)
    else:
        # Warm caches while standing by (informers only: no worker, no write), so a
        # takeover starts working at once instead of listing every PV first.
        threading.Thread(
            target=_warm, args=(controller, forbidden), name="warm-caches", daemon=True
        ).start()
        elector.start()
    stop.wait()
    # Lost the Lease: another replica may already be working, stop at once.
    lost_lease = lost.is_set()  # release() below ends leadership too: decide now
    finished = controller.stop(0.0 if lost_lease or refused else settings.shutdown_grace)
    if elector is not None and (lost_lease or refused):
        elector.stop()  # lost: no write to a lost Lease (reached only in tests); refused: none
    elif elector is not None:
        elector.release()
    controller.metrics.leader.set(0)
    if health is not None:
        health.stop()
    if refused:
        raise refused[0]
    return 0 if finished and not lost_lease else 1


def _warm(controller: Controller, on_forbidden: Callable[[KubeForbidden], None]) -> None:
    """Fill the caches in the background; a failure here is retried by ``start``,
    except a 403: a standby without the permission could never take over either."""
    try:
        controller.warm()
    except KubeForbidden as err:
        on_forbidden(err)
    except Exception as exc:
        log.warning("controller.warm_failed", error=str(exc)[:200])


def leader_elector(
    controller: Controller,
    settings: Settings,
    stop: threading.Event,
    lost: threading.Event,
    *,
    exit_hard: Callable[[int], NoReturn] = os._exit,
    on_forbidden: Callable[[KubeForbidden], None] | None = None,
) -> LeaderElector:
    """Start the controller when elected; on losing the Lease, exit (the pod restarts
    as a standby), as client-go users do. A 403 on the Lease or on the controller's
    first lists goes to ``on_forbidden`` (when given)."""

    def start_in_background() -> None:  # callbacks must return at once
        controller.metrics.leader.set(1)

        def start() -> None:
            try:
                controller.start()
            except KubeForbidden as err:
                if on_forbidden is None:
                    stop.set()
                    raise
                on_forbidden(err)
            except Exception:
                stop.set()
                raise

        threading.Thread(target=start, name="controller-start", daemon=True).start()

    def step_down() -> None:
        controller.metrics.leader.set(0)
        stop.set()

    def exit_at_once() -> None:
        """Another replica may take the Lease as soon as it expires, while Heketi
        requests of this one are still in flight: a graceful stop would let them run on,
        and a release would be a write by a process that no longer leads. Only ending
        the process stops everything at once; the Deployment restarts it as a standby."""
        lost.set()
        try:
            log.error("leader.lost", lease=elector.lease, action="exit")
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            exit_hard(1)

    elector = LeaderElector(
        controller.kube,
        namespace=settings.namespace,
        name=lease_name(settings.provisioner_name),
        identity=holder_identity(os.environ.get("POD_NAME")),
        lease_duration=settings.leader_election_lease_duration,
        renew_deadline=settings.leader_election_lease_duration * 2 / 3,
        retry_period=settings.leader_election_lease_duration * 2 / 15,
        on_started_leading=start_in_background,
        on_stopped_leading=step_down,
        on_lost_leading=exit_at_once,
        watch=True,  # see each renewal at once: a takeover waits one lease duration
        on_forbidden=on_forbidden,
    )
    return elector

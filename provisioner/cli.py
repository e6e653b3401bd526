"""Command line: ``heketi-provisioner {run,sandbox}``.

Every option can also come from the environment as ``HEKETI_PROVISIONER_<OPTION>``
(upper snake case, e.g. ``HEKETI_PROVISIONER_WORKERS=32``); a flag on the command
line wins.  That is how the Deployment manifest configures the container.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from provisioner import __version__
from provisioner.config import Settings

if TYPE_CHECKING:
    from provisioner.controller import Controller
    from provisioner.leader import LeaderElector

ENV_PREFIX = "HEKETI_PROVISIONER_"
_TRUE = {"1", "true", "yes", "on"}


def env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").replace("-", "_").upper()


def _option(
    parser: argparse.ArgumentParser,
    flag: str,
    *,
    help: str,
    default: Any = None,
    type: Callable[[str], Any] = str,
    **kwargs: Any,
) -> None:
    """An option whose default comes from its environment variable, shown in --help."""
    env = env_name(flag)
    raw = os.environ.get(env)
    value = type(raw) if raw is not None else default
    shown = "" if default is None else f"; default {default}"
    parser.add_argument(flag, default=value, type=type, help=f"{help} (env {env}{shown})", **kwargs)


def _switch(parser: argparse.ArgumentParser, flag: str, *, help: str) -> None:
    env = env_name(flag)
    default = os.environ.get(env, "").strip().lower() in _TRUE
    parser.add_argument(flag, action="store_true", default=default, help=f"{help} (env {env})")


def _common(parser: argparse.ArgumentParser, *, log_level: str) -> None:
    defaults = Settings()
    _option(
        parser,
        "--provisioner-name",
        default=defaults.provisioner_name,
        help="StorageClass provisioner name to serve; kubernetes.io/glusterfs adopts in-tree PVs",
    )
    _option(parser, "--workers", type=int, default=defaults.workers, help="worker threads")
    _option(
        parser,
        "--heketi-concurrency",
        type=int,
        default=defaults.heketi_concurrency,
        help="Heketi operations in flight at once (keep <= Heketi's limit)",
    )
    _option(
        parser,
        "--log-format",
        default="auto",
        choices=["auto", "json", "console"],
        help="log format; auto = console on a terminal, JSON otherwise",
    )
    _option(
        parser,
        "--log-level",
        default=log_level,
        choices=["debug", "info", "warning", "error"],
        help="log level",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heketi-provisioner",
        description="Kubernetes dynamic provisioner for GlusterFS volumes through Heketi.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the controller against a cluster")
    _option(run, "--kubeconfig", help="kubeconfig file; in-cluster service account when unset")
    _common(run, log_level="info")
    _switch(
        run,
        "--assume-glusterfs-plugin",
        help="provision on Kubernetes 1.26+ too, whose kubelets cannot mount glusterfs volumes",
    )
    _option(
        run,
        "--metrics-address",
        default=Settings().metrics_address,
        help="HOST:PORT for /metrics, /healthz, /readyz; 0 or empty disables",
    )
    _option(
        run,
        "--resync-period",
        type=float,
        default=Settings().resync_period,
        help="seconds between re-examining every claim and volume",
    )
    _option(
        run,
        "--shutdown-grace",
        type=float,
        default=Settings().shutdown_grace,
        help="seconds in-flight work may take after SIGTERM",
    )
    _option(
        run,
        "--orphan-sweep-period",
        type=float,
        default=Settings().orphan_sweep_period,
        help="seconds between sweeps deleting Heketi volumes no claim or PV accounts for "
        "(left by a crash before the PV was written); 0 disables",
    )
    _option(
        run,
        "--orphan-grace-seconds",
        type=float,
        default=Settings().orphan_grace_seconds,
        help="an unreferenced volume is deleted only once an earlier sweep this long ago "
        "saw it unreferenced too",
    )
    _option(
        run,
        "--heketi-timeout",
        type=float,
        default=Settings().heketi_timeout,
        help="seconds Heketi may take to answer one HTTP request",
    )
    _option(
        run,
        "--leader-election-lease-duration",
        type=float,
        default=Settings().leader_election_lease_duration,
        help="seconds a Lease stays valid without renewal (a standby takes over after it)",
    )
    _option(
        run,
        "--namespace",
        help="the controller's own namespace, writable by cluster admins only: its Lease "
        "and its intent records live there (default: $POD_NAMESPACE, else default)",
    )
    _switch(run, "--no-leader-election", help="do not take the Lease (single replica only)")

    from provisioner.audit import add_audit_arguments

    audit = sub.add_parser("audit", help="compare Heketi volumes with PVs; read-only")
    add_audit_arguments(audit)

    box = sub.add_parser(
        "sandbox",
        help="start the loopback Heketi + Kubernetes sandbox (and the controller)",
        description="Without --demo, serves until interrupted. With --demo, runs the "
        "walk-through and exits with its result (unless --serve is also given). "
        "The Kubernetes sandbox reports 1.25.16 by default: on 1.26+ the controller's "
        "version gate refuses to provision (kubelets there cannot mount glusterfs).",
    )
    _option(box, "--kubeconfig-out", default="./sandbox.kubeconfig", help="kubeconfig to write")
    _option(box, "--kube-port", type=int, default=0, help="Kubernetes API port (0 = any free)")
    _option(box, "--kube-version", default="1.25.16", help="Kubernetes version to report")
    _option(box, "--heketi-port", type=int, default=0, help="Heketi port (0 = any free)")
    _option(box, "--heketi-admin-key", help="Heketi admin key; default: random per run")
    _option(
        box, "--heketi-latency", type=float, default=0.0, help="seconds added to Heketi operations"
    )
    _option(
        box, "--heketi-max-inflight", type=int, default=8, help="Heketi in-flight operation limit"
    )
    _common(box, log_level="warning")
    _switch(box, "--assume-glusterfs-plugin", help="disable the 1.26+ version gate")
    _switch(box, "--without-controller", help="start only the two servers")
    _switch(box, "--serve", help="keep running until interrupted")
    _switch(box, "--demo", help="run the scripted walk-through; exit 0 only if every step held")
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings(
        kubeconfig=getattr(args, "kubeconfig", None) or None,
        provisioner_name=args.provisioner_name,
        workers=args.workers,
        heketi_concurrency=args.heketi_concurrency,
        assume_glusterfs_plugin=args.assume_glusterfs_plugin,
        metrics_address=getattr(args, "metrics_address", "0"),
        resync_period=getattr(args, "resync_period", Settings().resync_period),
        shutdown_grace=getattr(args, "shutdown_grace", Settings().shutdown_grace),
        orphan_sweep_period=getattr(args, "orphan_sweep_period", Settings().orphan_sweep_period),
        orphan_grace_seconds=getattr(args, "orphan_grace_seconds", Settings().orphan_grace_seconds),
        heketi_timeout=getattr(args, "heketi_timeout", Settings().heketi_timeout),
        leader_election_lease_duration=getattr(
            args, "leader_election_lease_duration", Settings().leader_election_lease_duration
        ),
        log_format=args.log_format,
        log_level=args.log_level,
        namespace=getattr(args, "namespace", None)
        or os.environ.get("POD_NAMESPACE")
        or Settings().namespace,
    )


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def build_controller(settings: Settings) -> Controller:
    """settings → Kubernetes client → caches → provisioner → controller."""
    from provisioner.controller import Caches, Controller
    from provisioner.gluster import GlusterProvisioner
    from provisioner.kubeapi import KubeAPI, load_api_client
    from provisioner.observability import Metrics

    kube = KubeAPI(load_api_client(settings.kubeconfig), request_timeout=settings.request_timeout)
    caches = Caches(kube, settings)
    metrics = Metrics()
    provisioner = GlusterProvisioner(
        kube=kube,
        provisioner_name=settings.provisioner_name,
        class_lookup=caches.storage_class,
        heketi_concurrency=settings.heketi_concurrency,
        orphan_grace_seconds=settings.orphan_grace_seconds,
        heketi_timeout=(min(5.0, settings.heketi_timeout), settings.heketi_timeout),
        heketi_observer=metrics.observe_heketi,
        intent_namespace=settings.namespace,
    )
    return Controller(kube, provisioner, settings, caches=caches, metrics=metrics)


def run(
    settings: Settings,
    *,
    leader_election: bool = True,
    exit_hard: Callable[[int], NoReturn] = os._exit,
) -> int:
    from provisioner.observability import start_health_server

    stop = _stop_on_signals()
    controller = build_controller(settings)
    lost = threading.Event()
    elector = (
        None
        if not leader_election
        else _elector(controller, settings, stop, lost, exit_hard=exit_hard)
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
        controller.start()
        controller.metrics.leader.set(1)  # without election this replica acts as leader
    else:
        elector.start()
    stop.wait()
    # Lost the Lease: another replica may already be working, stop at once.
    lost_lease = lost.is_set()  # release() below ends leadership too: decide now
    finished = controller.stop(0.0 if lost_lease else settings.shutdown_grace)
    if elector is not None and lost_lease:
        elector.stop()  # reached only when exit_hard returned (tests): no write to a lost Lease
    elif elector is not None:
        elector.release()
    controller.metrics.leader.set(0)
    if health is not None:
        health.stop()
    return 0 if finished and not lost_lease else 1


def _elector(
    controller: Controller,
    settings: Settings,
    stop: threading.Event,
    lost: threading.Event,
    *,
    exit_hard: Callable[[int], NoReturn] = os._exit,
) -> LeaderElector:
    """Start the controller when elected; on losing the Lease, exit (the pod restarts
    as a standby), as client-go users do."""
    import structlog

    from provisioner.leader import LeaderElector, holder_identity, lease_name

    def start_in_background() -> None:  # callbacks must return at once
        controller.metrics.leader.set(1)

        def start() -> None:
            try:
                controller.start()
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
            structlog.get_logger(__name__).error(
                "leader.lost", lease=f"{elector.namespace}/{elector.name}", action="exit"
            )
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
    )
    return elector


def sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from provisioner.sandbox.demo import run_demo
    from provisioner.sandbox.stack import SandboxStack, StackOptions

    options = StackOptions(
        kubeconfig_out=args.kubeconfig_out,
        kube_port=args.kube_port,
        kube_version=args.kube_version,
        heketi_port=args.heketi_port,
        heketi_admin_key=args.heketi_admin_key,
        heketi_latency=args.heketi_latency,
        heketi_max_inflight=args.heketi_max_inflight,
        with_controller=not args.without_controller,
        settings=settings,
    )
    if args.demo and args.without_controller:
        print("--demo needs the controller; drop --without-controller", file=sys.stderr)
        return 2
    stop = _stop_on_signals()
    with SandboxStack(options) as stack:
        key_note = (
            f"admin key: {stack.admin_key} (as given)"
            if not stack.admin_key_generated
            else "admin key: random for this run; the demo puts it in Secret default/heketi-admin"
        )
        print(f"Kubernetes API: {stack.kube.url} (version {options.kube_version})")
        print(f"kubeconfig:     {stack.kubeconfig_path}")
        print(f"  try: kubectl --kubeconfig {stack.kubeconfig_path} get pvc,pv -A")
        print(f"Heketi:         {stack.heketi_url} (user admin; {key_note})")
        print(f"controller:     {'running' if stack.controller else 'not started'}", flush=True)
        status = 0
        if args.demo:
            status = run_demo(stack, sys.stdout)
        if args.serve or not args.demo:
            print("serving; press Ctrl-C to stop", flush=True)
            stop.wait()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "audit":
        from provisioner.audit import audit_main

        return audit_main(args)
    from provisioner.observability import configure_logging

    settings = settings_from(args)
    if args.command == "run":
        configure_logging(settings.log_format, settings.log_level)
        return run(settings, leader_election=not args.no_leader_election)
    configure_logging(settings.log_format, settings.log_level, stream=sys.stderr)
    return sandbox(args, settings)

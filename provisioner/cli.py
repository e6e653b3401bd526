"""Command line: ``heketi-provisioner {run,sandbox,audit}``: flags → ``Settings``.

Every option can also come from the environment as ``HEKETI_PROVISIONER_<OPTION>``
(upper snake case, e.g. ``HEKETI_PROVISIONER_WORKERS=32``); a flag on the command
line wins.  That is how the Deployment manifest configures the container.

A value that cannot work (not a number, not one of the choices, refused by
``Settings``) ends the process with one line naming the flag or the variable it
came from, and exit status 2, the way argparse reports a bad flag: never a
traceback. Building and running the controller is ``provisioner.app``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from provisioner import __version__
from provisioner.app import run, stop_on_signals
from provisioner.audit.command import add_audit_arguments, audit_main
from provisioner.config import Settings, SettingsError
from provisioner.k8s.errors import KubeForbidden
from provisioner.observability import configure_logging
from provisioner.sandbox.demo import run_demo
from provisioner.sandbox.stack import SandboxStack, StackOptions

ENV_PREFIX = "HEKETI_PROVISIONER_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
PROG = "heketi-provisioner"


class ConfigError(Exception):
    """A configuration value that cannot work; the message names where it came from."""


class _Parser(argparse.ArgumentParser):
    """argparse, reporting a bad flag in one line (no usage block) with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message}\n")


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
    value = default if raw is None else _from_env(env, raw, type, kwargs.get("choices"))
    shown = "" if default is None else f"; default {default}"
    parser.add_argument(flag, default=value, type=type, help=f"{help} (env {env}{shown})", **kwargs)


def _from_env(env: str, raw: str, type: Callable[[str], Any], choices: Any) -> Any:
    """The value of a variable, converted as its flag's value would be."""
    try:
        value = type(raw)
    except (TypeError, ValueError):
        kind = getattr(type, "__name__", "value")
        raise ConfigError(f"{env}={raw!r}: not a valid {kind}") from None
    if choices is not None and value not in choices:
        allowed = ", ".join(map(str, choices))
        raise ConfigError(f"{env}={raw!r}: must be one of {allowed}")
    return value


def _switch(parser: argparse.ArgumentParser, flag: str, *, help: str) -> None:
    env = env_name(flag)
    raw = os.environ.get(env, "").strip().lower()
    if raw not in _TRUE | _FALSE:
        raise ConfigError(f"{env}={os.environ[env]!r}: must be true or false")
    default = raw in _TRUE
    parser.add_argument(flag, action="store_true", default=default, help=f"{help} (env {env})")


def _common(parser: argparse.ArgumentParser, *, log_level: str) -> None:
    defaults = Settings()
    _option(
        parser,
        "--provisioner-name",
        default=defaults.provisioner_name,
        help="StorageClass provisioner name to serve; kubernetes.io/glusterfs adopts in-tree PVs",
    )
    _option(
        parser,
        "--block-provisioner-name",
        default=defaults.block_provisioner_name,
        help="second name served: gluster-block volumes as iSCSI PVs; empty turns it off",
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
    parser = _Parser(
        prog=PROG,
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
    _switch(
        run,
        "--no-pv-finalizer",
        help="write PVs without our finalizer (a PV deleted directly then keeps its Heketi "
        "volume, as in-tree); see docs/migration.md#uninstalling",
    )

    gone = sub.add_parser(
        "uninstall",
        help="remove our finalizer from every PV we provisioned (after stopping the "
        "controller), so that no PV hangs in Terminating once we are gone",
    )
    _option(gone, "--kubeconfig", help="kubeconfig file; in-cluster service account when unset")
    _option(
        gone,
        "--provisioner-name",
        default=Settings().provisioner_name,
        help="whose PVs (and Lease) to look at",
    )
    _option(
        gone,
        "--block-provisioner-name",
        default=Settings().block_provisioner_name,
        help="the block name the controller also served: its PVs are released too "
        "(empty: none)",
    )
    _option(
        gone,
        "--namespace",
        help="the controller's namespace, where its Lease is (default: $POD_NAMESPACE, "
        "else default)",
    )
    _switch(gone, "--force", help="also release PVs mid-delete (their Heketi volumes stay)")
    _switch(gone, "--dry-run", help="say what would be done; change nothing")

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
        block_provisioner_name=args.block_provisioner_name,
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
        pv_finalizer=not getattr(args, "no_pv_finalizer", False),
        namespace=getattr(args, "namespace", None)
        or os.environ.get("POD_NAMESPACE")
        or Settings().namespace,
    )


def sandbox(args: argparse.Namespace, settings: Settings) -> int:
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
    stop = stop_on_signals()
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


def settings_or_error(args: argparse.Namespace, argv: Sequence[str]) -> Settings:
    """``settings_from``, with a refused value reported as the flag or variable it
    came from (the flag when it is on the command line)."""
    try:
        settings = settings_from(args)
    except SettingsError as err:
        flag = "--" + err.field.replace("_", "-")
        given = any(a == flag or a.startswith(flag + "=") for a in argv)
        env = env_name(flag)
        source = env if not given and env in os.environ else flag
        raise ConfigError(f"{source}: {err.reason}") from None
    if settings.kubeconfig is not None and not Path(settings.kubeconfig).is_file():
        flag = "--kubeconfig"
        given = any(a == flag or a.startswith(flag + "=") for a in argv)
        source = flag if given else env_name(flag)
        raise ConfigError(f"{source}: no such file: {settings.kubeconfig}")
    return settings


def _uninstall(args: argparse.Namespace) -> int:
    from provisioner.controller.uninstall import uninstall
    from provisioner.k8s.kubeapi import KubeAPI, load_api_client

    kube = KubeAPI(load_api_client(args.kubeconfig or None))
    return uninstall(
        kube,
        provisioner_name=args.provisioner_name,
        block_provisioner_name=args.block_provisioner_name,
        namespace=args.namespace or os.environ.get("POD_NAMESPACE") or Settings().namespace,
        force=args.force,
        dry_run=args.dry_run,
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except ConfigError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except KubeForbidden as err:
        # one line the operator can act on, not a traceback
        what = (
            f"{err.user or 'this identity'} may not {err.permission}" if err.verb else err.message
        )
        print(
            f"{PROG}: error: forbidden: {what}; grant it in the controller's RBAC "
            "(manifests/rbac.yaml, or the Helm chart's)",
            file=sys.stderr,
        )
        return 1


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command == "audit":
        return audit_main(args)
    if args.command == "uninstall":
        return _uninstall(args)
    settings = settings_or_error(args, argv)
    if args.command == "run":
        configure_logging(settings.log_format, settings.log_level)
        return run(settings, leader_election=not args.no_leader_election)
    configure_logging(settings.log_format, settings.log_level, stream=sys.stderr)
    return sandbox(args, settings)

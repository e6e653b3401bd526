"""``heketi-provisioner audit``: the command line around ``compare.run_audit``.

The key for ``--heketi-url`` comes only from a file or the environment, never from
the command line, where ``ps`` would show it. Exit status: 0 clean, 1 problems
found, 2 the audit could not complete.
"""

from __future__ import annotations

import argparse
import os
import sys

from provisioner.audit.compare import run_audit
from provisioner.audit.report import render_table
from provisioner.config import DEFAULT_PROVISIONER_NAME
from provisioner.gluster.pool import HeketiTarget
from provisioner.k8s.errors import KubeAPIError
from provisioner.k8s.kubeapi import KubeAPI, load_api_client

__all__ = ["KEY_ENV", "add_audit_arguments", "audit_main"]

KEY_ENV = "HEKETI_PROVISIONER_AUDIT_KEY"


def add_audit_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``audit`` subcommand's options (the key only from a file or the environment,
    never from the command line, where ``ps`` would show it)."""
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("HEKETI_PROVISIONER_KUBECONFIG"),
        help="kubeconfig file; in-cluster service account when unset "
        "(env HEKETI_PROVISIONER_KUBECONFIG)",
    )
    parser.add_argument(
        "--provisioner-name",
        default=os.environ.get("HEKETI_PROVISIONER_PROVISIONER_NAME", DEFAULT_PROVISIONER_NAME),
        help="whose PVs to audit (env HEKETI_PROVISIONER_PROVISIONER_NAME; "
        f"default {DEFAULT_PROVISIONER_NAME})",
    )
    parser.add_argument(
        "--heketi-url",
        action="append",
        default=[],
        metavar="URL",
        help="also audit this Heketi server (repeatable); for servers no PV names yet",
    )
    parser.add_argument("--heketi-user", default="admin", help="issuer for --heketi-url")
    parser.add_argument(
        "--heketi-key-file",
        metavar="PATH",
        help=f"file holding the key for --heketi-url (or env {KEY_ENV})",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=["table", "json"],
        default="table",
        help="table for people (default), json for scripts",
    )


def _extra_targets(args: argparse.Namespace) -> list[HeketiTarget]:
    key = os.environ.get(KEY_ENV, "")
    if args.heketi_key_file:
        with open(args.heketi_key_file, encoding="utf-8") as handle:
            key = handle.read().strip()
    return [HeketiTarget(url, args.heketi_user if key else "", key) for url in args.heketi_url]


def audit_main(args: argparse.Namespace) -> int:
    """Run the audit, print it; exit 0 clean, 1 problems found, 2 could not complete.

    Logs (Heketi retries, say) go to stderr at warning level: stdout carries only the
    report, so that ``-o json`` output can be piped into a parser.
    """
    from provisioner.observability import configure_logging

    configure_logging("auto", "warning", stream=sys.stderr)
    try:
        extra = _extra_targets(args)
    except OSError as err:
        print(f"audit: cannot read --heketi-key-file: {err.strerror}", file=sys.stderr)
        return 2
    try:
        kube = KubeAPI(load_api_client(args.kubeconfig))
        report = run_audit(kube, provisioner_name=args.provisioner_name, extra_targets=extra)
    except KubeAPIError as err:
        print(f"audit: cannot read from the Kubernetes API: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # e.g. no kubeconfig: say what, not a traceback
        print(f"audit: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(report.to_json() + "\n" if args.output == "json" else render_table(report))
    return report.exit_code()

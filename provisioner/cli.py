"""Command line: ``heketi-provisioner {run,sandbox,audit}``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from provisioner import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="heketi-provisioner",
        description="Kubernetes dynamic provisioner for GlusterFS volumes through Heketi.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="run the controller against a cluster")
    sub.add_parser("sandbox", help="start the loopback Heketi + Kubernetes sandbox")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    print(f"heketi-provisioner {args.command}: not implemented yet", file=sys.stderr)
    return 2

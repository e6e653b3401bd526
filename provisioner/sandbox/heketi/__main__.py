"""`python -m provisioner.sandbox.heketi`: serve the simulator until interrupted."""

from __future__ import annotations

import argparse
import json
import sys

from ..serving import serve_until_stopped
from .simulator import HeketiSimulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m provisioner.sandbox.heketi", description="Serve a Heketi simulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--admin-key", help="JWT key of the admin user")
    parser.add_argument("--user-key", help="JWT key of the user account")
    parser.add_argument("--disable-auth", action="store_true", help="accept requests without JWT")
    parser.add_argument("--clusters", type=int, default=1)
    parser.add_argument("--nodes", type=int, default=3, help="nodes per cluster")
    parser.add_argument("--devices-per-node", type=int, default=2)
    parser.add_argument("--device-size-gb", type=int, default=500)
    parser.add_argument(
        "--latency",
        default="0",
        help="seconds per background step, or JSON by op: '{\"volume_create\": 0.5}'",
    )
    parser.add_argument("--max-inflight", type=int, default=8)
    parser.add_argument("--retry-after", type=int, help="add Retry-After to 429 (Heketi doesn't)")
    parser.add_argument("--seed", type=int, help="seed ids and placement for repeatable runs")
    args = parser.parse_args(argv)
    if not args.disable_auth and not args.admin_key:
        parser.error("--admin-key is required unless --disable-auth is given")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    latency = (
        json.loads(args.latency) if args.latency.lstrip().startswith("{") else float(args.latency)
    )
    sim = HeketiSimulator(
        host=args.host,
        port=args.port,
        admin_key=args.admin_key,
        user_key=args.user_key,
        auth=not args.disable_auth,
        clusters=args.clusters,
        nodes=args.nodes,
        devices_per_node=args.devices_per_node,
        device_size_gb=args.device_size_gb,
        latency=latency,
        max_inflight=args.max_inflight,
        retry_after=args.retry_after,
        seed=args.seed,
    )
    return serve_until_stopped(
        sim.start, sim.stop, lambda url: [f"Heketi simulator listening on {url}"]
    )


if __name__ == "__main__":
    sys.exit(main())

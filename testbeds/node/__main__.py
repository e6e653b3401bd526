"""``python -m testbeds.node images|up|down|status``: the node bed by hand.

- ``images [--force]``: build the bed's images that are missing or stale (cached in
  ``~/.cache/heketi-provisioner/images``); prints each image's size and layers.
- ``up [--workdir DIR] [--no-heketi]``: the node (and Heketi with its mock executor,
  its storage addresses on the node's dead-end /24) until Ctrl-C or SIGTERM; prints
  the admin kubeconfig, the node's address and Heketi's URL as pods reach it.
- ``down``: stops a running ``up``, then removes whatever a killed run left (every
  container, mount, link, iptables rule, cgroup and directory of the bed).
- ``status``: what ``up`` runs now, and what a killed run left.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from ..harness.processes import wait_for
from ..peers import default_topology, find_peers, start_heketi
from . import cleanup, images
from .bed import exclusive, start_node

STATE = Path("/run/hpnode-up.json")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def build_images(args: argparse.Namespace) -> int:
    for name, stamp in images.build_all(force=args.force).items():
        size = int(stamp.get("size_bytes") or 0)
        shown = f"{size / 1e6:.1f} MB" if size else "(in buildah's store only)"
        print(f"{name}: {stamp.get('ref')} layers={stamp.get('layers')} size={shown}")
    return 0


def up(args: argparse.Namespace) -> int:
    peers = find_peers(node=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with contextlib.ExitStack() as stack:
        workdir = Path(args.workdir or stack.enter_context(tempfile.TemporaryDirectory()))
        print(f"[node] starting the node bed in {workdir} ...", file=sys.stderr)
        node = stack.enter_context(start_node(peers, workdir))
        state = {
            "pid": os.getpid(),
            "kubeconfig": str(node.kube.admin_kubeconfig),
            "node_ip": node.node_ip,
            "pod_cidr": node.ranges.pod_cidr,
        }
        if not args.no_heketi:
            topology = default_topology(storage_ips=node.ranges.storage_ips(3))
            heketi = stack.enter_context(
                start_heketi(peers, workdir / "heketi", topology=topology, bed="node")
            )
            port = heketi.url.rsplit(":", 1)[1]
            state |= {
                "heketi_url": f"http://{node.node_ip}:{port}",
                "heketi_admin_key": heketi.admin_key,
            }
        STATE.write_text(json.dumps(state, indent=1))
        STATE.chmod(0o600)
        for key, value in state.items():
            print(f"{key}={value}")
        print("[node] up; Ctrl-C or `python -m testbeds.node down` stops", file=sys.stderr)
        stop.wait()
        print("[node] stopping ...", file=sys.stderr)
    STATE.unlink(missing_ok=True)
    return 0


def down(_: argparse.Namespace) -> int:
    with contextlib.suppress(OSError, ValueError):
        pid = int(json.loads(STATE.read_text())["pid"])
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not _alive(pid), 180, f"`up` (pid {pid}) stopped")
    STATE.unlink(missing_ok=True)
    kube_proxy = None
    with contextlib.suppress(Exception):
        kube_proxy = find_peers(node=True).path("KUBE_PROXY_125")
    with exclusive():
        removed = cleanup.clean(kube_proxy=kube_proxy)
    for item in removed:
        print(f"removed {item}")
    print(f"[node] down; {len(removed)} leftover(s) removed")
    return 0


def status(_: argparse.Namespace) -> int:
    try:
        state = json.loads(STATE.read_text())
    except (OSError, ValueError):
        state = {}
    if state and _alive(int(state["pid"])):
        for key, value in state.items():
            print(f"{key}={value}")
        return 0
    print("not up")
    for item in cleanup.leftovers():
        print(f"leftover: {item}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testbeds.node", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    p_img = sub.add_parser("images", help="build the bed's images (cached)")
    p_img.add_argument("--force", action="store_true", help="rebuild even if current")
    p_up = sub.add_parser("up", help="start the node until Ctrl-C")
    p_up.add_argument("--workdir", help="keep logs and state here (default: a temporary dir)")
    p_up.add_argument("--no-heketi", action="store_true")
    sub.add_parser("down", help="stop `up` and remove leftovers of killed runs")
    sub.add_parser("status", help="what runs now, or what a killed run left")
    args = ap.parse_args(argv)
    commands = {"images": build_images, "up": up, "down": down, "status": status}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

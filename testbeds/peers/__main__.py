"""``python -m testbeds.peers up|down|status``: the real peers by hand.

- ``up [--kube 1.25|current] [--no-heketi] [--workdir DIR]``: etcd, kube-apiserver,
  kube-controller-manager and Heketi (mock executor) on loopback until Ctrl-C or
  SIGTERM; prints the admin kubeconfig, the Heketi URL and its admin key, and writes
  them to the state file so that other commands find them.
- ``down``: stops a running ``up`` (SIGTERM, then waits), and kills what a killed run
  left behind: processes of any bed whose owner is gone (see
  ``testbeds.harness.processes``).
- ``status``: what ``up`` runs now, and leftovers of killed runs.
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

from ..harness.processes import leftovers, reap_leftovers, wait_for
from . import KUBE_VERSIONS, find_peers, start_heketi, start_kube

STATE = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / (
    "heketi-provisioner-testbeds/peers-up.json"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def up(args: argparse.Namespace) -> int:
    peers = find_peers()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with contextlib.ExitStack() as stack:
        workdir = Path(args.workdir or stack.enter_context(tempfile.TemporaryDirectory()))
        print(f"[peers] starting Kubernetes {args.kube} in {workdir} ...", file=sys.stderr)
        kube = stack.enter_context(start_kube(peers, args.kube, workdir / "kube"))
        state = {"pid": os.getpid(), "kubeconfig": str(kube.admin_kubeconfig)}
        if not args.no_heketi:
            print("[peers] starting Heketi (mock executor) ...", file=sys.stderr)
            heketi = stack.enter_context(start_heketi(peers, workdir / "heketi"))
            state |= {"heketi_url": heketi.url, "heketi_admin_key": heketi.admin_key}
        STATE.parent.mkdir(parents=True, exist_ok=True)
        STATE.write_text(json.dumps(state, indent=1))
        STATE.chmod(0o600)
        for key, value in state.items():
            print(f"{key}={value}")
        print("[peers] up; Ctrl-C or `python -m testbeds.peers down` stops", file=sys.stderr)
        stop.wait()
        print("[peers] stopping ...", file=sys.stderr)
    STATE.unlink(missing_ok=True)
    return 0


def down(_: argparse.Namespace) -> int:
    with contextlib.suppress(OSError, ValueError):
        pid = int(json.loads(STATE.read_text())["pid"])
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not _alive(pid), 120, f"`up` (pid {pid}) stopped")
    STATE.unlink(missing_ok=True)
    killed = reap_leftovers()
    print(f"[peers] down; {len(killed)} leftover process(es) of killed runs killed")
    return 0


def status(_: argparse.Namespace) -> int:
    try:
        state = json.loads(STATE.read_text())
    except (OSError, ValueError):
        state = {}
    if state and _alive(int(state["pid"])):
        for key, value in state.items():
            print(f"{key}={value}")
    else:
        print("not up")
    for pid, mark in leftovers():
        print(f"leftover: pid {pid} ({mark})")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m testbeds.peers", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the peers until Ctrl-C")
    p_up.add_argument("--kube", choices=KUBE_VERSIONS, default="1.25")
    p_up.add_argument("--no-heketi", action="store_true")
    p_up.add_argument("--workdir", help="keep logs and state here (default: a temporary dir)")
    sub.add_parser("down", help="stop `up` and kill leftovers of killed runs")
    sub.add_parser("status", help="what runs now")
    args = ap.parse_args(argv)
    return {"up": up, "down": down, "status": status}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())

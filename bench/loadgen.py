"""The test bed's own capacity, measured from a separate client process.

Run by the benchmarks after their measurement (so its requests never count as the
controller's), or by hand against any sandbox::

    python bench/loadgen.py --kubeconfig sandbox.kubeconfig --heketi-url URL --heketi-key KEY

The client is one Python process with a few threads, like the controller, so the
figures say how fast *such a client* can get answers from the sandbox: if they are
close to what the controller achieved, the test bed was the limit, not the controller.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from heketi_client import HeketiClient
from provisioner.k8s.kubeapi import KubeAPI, load_api_client
from provisioner.observability import configure_logging


def _rate(action: Callable[[int], None], *, seconds: float, threads: int) -> float:
    """Requests per second that ``threads`` threads complete in ``seconds``."""
    done = [0] * threads
    stop = threading.Event()

    def loop(slot: int) -> None:
        n = 0
        while not stop.is_set():
            action(slot * 1_000_000 + n)
            n += 1
            done[slot] = n

    workers = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    stop.wait(seconds)
    stop.set()
    for w in workers:
        w.join()
    return sum(done) / (time.monotonic() - started)


def kube_writes_per_second(kube: KubeAPI, *, seconds: float, threads: int) -> float:
    """Creates of small core Events: a write that no controller watches."""
    prefix = f"loadgen-{os.getpid()}"

    def create(n: int) -> None:
        kube.create(
            "events",
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{prefix}.{n}", "namespace": "default"},
                "involvedObject": {"kind": "Pod", "namespace": "default", "name": "x"},
                "reason": "Load",
                "message": "capacity probe",
                "type": "Normal",
            },
            "default",
        )

    return _rate(create, seconds=seconds, threads=threads)


def pv_list_seconds(kube: KubeAPI, *, repeats: int = 3) -> dict[str, float]:
    """Median time of a full PV list: in pages of 500 (as informers list) and unpaged."""
    paged, whole = [], []
    for _ in range(repeats):
        started = time.monotonic()
        token = None
        while True:
            page = kube.list("persistentvolumes", limit=500, continue_token=token)
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
        paged.append(time.monotonic() - started)
        started = time.monotonic()
        items = kube.list("persistentvolumes").get("items") or []
        whole.append(time.monotonic() - started)
    return {
        "pv_count": float(len(items)),
        "list_paged_seconds": statistics.median(paged),
        "list_seconds": statistics.median(whole),
    }


def heketi_requests_per_second(url: str, key: str, *, seconds: float, threads: int) -> float:
    """Signed ``GET /clusters``: JWT check + routing + JSON, no latency injected."""
    client = HeketiClient(url, user="admin", key=key)
    try:
        return _rate(lambda _n: client.list_clusters(), seconds=seconds, threads=threads)
    finally:
        client.close()


def measure(args: argparse.Namespace) -> dict[str, Any]:
    kube = KubeAPI(load_api_client(args.kubeconfig))
    out: dict[str, Any] = {
        "kube_writes_per_second": kube_writes_per_second(
            kube, seconds=args.seconds, threads=args.threads
        ),
        "heketi_requests_per_second": heketi_requests_per_second(
            args.heketi_url, args.heketi_key, seconds=args.seconds, threads=args.threads
        ),
    }
    if args.list_pvs:
        out.update(pv_list_seconds(kube))
    return out


def run_loadgen(
    kubeconfig: str,
    heketi_url: str,
    heketi_key: str,
    *,
    seconds: float = 2.0,
    threads: int = 8,
    list_pvs: bool = False,
) -> dict[str, Any]:
    """Run this module in a child process and return what it measured."""
    command = [
        sys.executable, str(Path(__file__)),
        "--kubeconfig", kubeconfig,
        "--heketi-url", heketi_url,
        "--heketi-key", heketi_key,
        "--seconds", str(seconds),
        "--threads", str(threads),
    ]  # fmt: skip
    if list_pvs:
        command.append("--list-pvs")
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--heketi-url", required=True)
    parser.add_argument("--heketi-key", required=True)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each rate probe")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--list-pvs", action="store_true", help="also time a full PV list")
    args = parser.parse_args()
    # stdout carries the JSON answer only; the clients' debug lines stay out of it.
    configure_logging("json", "warning", stream=sys.stderr)
    print(json.dumps(measure(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

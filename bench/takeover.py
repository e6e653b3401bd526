"""Takeover: the leader dies, how soon is a new claim Bound by the standby?

Two replicas of the controller (``python -m provisioner run``, leader election on,
each its own ``POD_NAME``) run next to ``--bound-claims`` pre-loaded bound claims.
Once the first leads and the second stands by, the leader is killed (SIGKILL: it
cannot release its Lease, as when its node is lost) and a new claim is created at
once. The standby can only take the Lease once it has expired, so nothing can do
better than about one lease duration; what the standby adds on top of that (a full
list of every PV, if its caches were cold) is what this measures.

    python bench/takeover.py --bound-claims 10000 --lease-duration 15
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import (
    BenchError,
    ControllerProcess,
    add_common_arguments,
    load_average,
    report,
    rounded,
    wait_until,
)
from fixtures import NAMESPACE, BoundWatch, claim_body, preload_bound, start_test_bed

TARGETS = {
    "bound_after_kill_seconds": "target <= lease duration + 1",
    "standby_started_after_kill_seconds": "(the Lease expires lease duration after its last renew)",
}

NEW_CLAIM = "takeover-new-claim"
STANDBY_SETTLE = 30.0
"""Seconds the standby is given to fill its caches when it does not say it did
(a version without ``controller.caches_synced``: the figure is then cold-cache)."""


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-takeover-"))
    bed = start_test_bed(
        workdir, volumes=1, latency=args.heketi_latency, max_inflight=args.heketi_inflight
    )
    replicas: list[ControllerProcess] = []
    try:
        preload_bound(bed, args.bound_claims)
        lease = ["--leader-election-lease-duration", f"{args.lease_duration:g}"]

        def replica(name: str) -> ControllerProcess:
            process = ControllerProcess(
                str(bed.kube.kubeconfig_path),
                workdir,
                workers=args.workers,
                heketi_concurrency=args.heketi_concurrency,
                extra_args=lease,
                env={"POD_NAME": name},
                name=name,
            )
            replicas.append(process)
            return process

        leader = replica("replica-a")
        leader.wait_ready(timeout=120)
        standby = replica("replica-b")
        settle_from = time.monotonic()

        def settled() -> bool:
            if standby.process.poll() is not None:
                raise BenchError(f"the standby exited early; see {standby.log_path}")
            if standby.logged("controller.started"):
                raise BenchError("the standby leads while the leader is alive")
            warm = standby.logged("controller.caches_synced")
            return warm or time.monotonic() - settle_from > STANDBY_SETTLE

        wait_until(settled, timeout=STANDBY_SETTLE + 120, what="the standby to settle")
        standby_warm = standby.logged("controller.caches_synced")
        standby_rss = standby.peak_rss_mb()
        cpu_before = standby.cpu_seconds()
        time.sleep(args.standby_seconds)  # a measurement window, not a wait for anything
        standby_cpu = standby.cpu_seconds() - cpu_before

        watch = BoundWatch(bed.kube)
        leader.kill()
        killed = time.monotonic()
        bed.kube.create_object("persistentvolumeclaims", claim_body(NEW_CLAIM), NAMESPACE)
        deadline = 3 * args.lease_duration + 120
        wait_until(lambda: watch.count(), timeout=deadline, what="the new claim to be Bound")
        bound = watch.bound[NEW_CLAIM] - killed
        started = wait_until(
            lambda: standby.logged("controller.started"), timeout=10, what="standby start"
        )
        assert started
        started_after = _started_after(standby, killed)
        rss = standby.peak_rss_mb()
    except BaseException:
        print(f"controller logs kept in {workdir}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    finally:
        for process in replicas:
            process.stop()
        bed.stop()

    return rounded(
        {
            "bound_claims": args.bound_claims,
            "lease_duration": args.lease_duration,
            "bound_after_kill_seconds": bound,
            "over_lease_seconds": bound - args.lease_duration,
            "standby_started_after_kill_seconds": started_after,
            "standby_warm": standby_warm,
            "standby_peak_rss_mb_before": standby_rss,
            "standby_peak_rss_mb": rss,
            "standby_cpu_seconds_per_minute": standby_cpu * 60 / args.standby_seconds,
            "heketi_latency": args.heketi_latency,
            "load_average": load_average(),
        }
    )


def _started_after(standby: ControllerProcess, killed: float) -> float:
    """When the standby logged ``controller.started``, relative to the kill (its log
    lines carry wall-clock timestamps; the difference to now is taken on one clock)."""
    import json
    from datetime import datetime

    for line in standby.log_path.read_text().splitlines():
        if '"controller.started"' in line:
            stamp = json.loads(line).get("timestamp", "")
            when = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            return when - (time.time() - (time.monotonic() - killed))
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bound-claims", type=int, default=10000, help="claims pre-loaded")
    parser.add_argument(
        "--lease-duration", type=float, default=15.0, help="--leader-election-lease-duration"
    )
    parser.add_argument(
        "--standby-seconds", type=float, default=10.0, help="window for the standby's CPU figure"
    )
    add_common_arguments(parser)
    args = parser.parse_args()
    if args.bound_claims < 0 or args.lease_duration < 3 or args.standby_seconds <= 0:
        parser.error("need --bound-claims >= 0, --lease-duration >= 3, --standby-seconds > 0")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return report(run, args, f"takeover: {args.bound_claims} bound claims", TARGETS)


if __name__ == "__main__":
    raise SystemExit(main())

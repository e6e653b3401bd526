"""Throughput: N claims created at once, how close to Heketi's own limit do we get?

Heketi runs at most K operations at once and each takes L seconds here, so no
provisioner can bind N claims faster than ceil(N/K)·L (``lower_bound_seconds``);
``ratio`` is that bound over the time we took (1.0 = perfect). Per claim, it also
counts what the controller asked of the Kubernetes API (writes, by its user agent)
and of Heketi (creates, queue polls, reads), and the 429s Heketi answered.

    python bench/throughput.py --claims 500 --heketi-latency 0.2 --heketi-inflight 8
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import (
    ControllerProcess,
    Sampler,
    add_common_arguments,
    controller_reads,
    controller_writes,
    heketi_breakdown,
    load_average,
    percentile,
    report,
    rounded,
    wait_until,
)
from fixtures import ADMIN_KEY, KINDS, NAMESPACE, BoundWatch, claim_body, start_test_bed
from loadgen import run_loadgen

TARGETS = {
    "ratio": "target >= 0.93 (N=2000, L=0.2, K=8)",
    "controller_cpu_ms_per_claim": "target <= 10",
    "kube_writes_per_claim": "target <= 6",
    "heketi_requests_per_claim": "target <= 3.5",
    "heketi_non_poll_requests_per_claim": "target <= 3",
    "secret_reads": "target: a few per TTL, not one per claim",
    "throttled": "target 0 at the default concurrency",
}


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    bed = start_test_bed(
        workdir,
        volumes=args.claims,
        latency=args.heketi_latency,
        max_inflight=args.heketi_inflight,
        kind=args.kind,
    )
    controller: ControllerProcess | None = None
    try:
        controller = ControllerProcess(
            str(bed.kube.kubeconfig_path),
            workdir,
            workers=args.workers,
            heketi_concurrency=args.heketi_concurrency,
            log_level=args.controller_log_level,
            profile_to=args.profile_controller,
        )
        controller.wait_ready(timeout=60)
        watch = BoundWatch(bed.kube)
        bed.heketi.reset_requests()
        bed.kube.clear_request_log()
        cpu_before = controller.cpu_seconds()
        bed_cpu_before = time.process_time()
        created: dict[str, float] = {}
        busy = Sampler(lambda: bed.heketi.operations()["in_flight"])
        first = time.monotonic()
        for i in range(args.claims):
            name = f"claim-{i:05d}"
            created[name] = time.monotonic()
            bed.kube.create_object("persistentvolumeclaims", claim_body(name, args.kind), NAMESPACE)
        deadline = 120 + 10 * math.ceil(args.claims / args.heketi_inflight) * args.heketi_latency
        wait_until(
            lambda: watch.count() >= args.claims,
            timeout=deadline,
            what=f"{args.claims} claims to be Bound",
            interval=0.01,
        )
        in_flight = busy.stop()
        cpu = controller.cpu_seconds() - cpu_before
        bed_cpu = time.process_time() - bed_cpu_before
        bound = dict(watch.bound)
        total = max(bound[n] for n in created) - first
        if args.plot:
            from plots import bound_over_time

            bound_over_time(
                args.plot,
                [bound[n] - first for n in created],
                heketi_latency=args.heketi_latency,
                heketi_inflight=args.heketi_inflight,
                title=f"throughput.py: {args.claims} claims at once "
                f"(Heketi {args.heketi_latency:g} s per volume, {args.heketi_inflight} at once)",
            )
        latencies = [bound[n] - created[n] for n in created]
        writes = controller_writes(bed.kube.request_log)
        secret_reads = controller_reads(bed.kube.request_log, "secrets")
        heketi = heketi_breakdown(bed.heketi.requests)
        rss = controller.peak_rss_mb()
        controller.stop()
        capacity = run_loadgen(
            str(bed.kube.kubeconfig_path), bed.heketi.url, ADMIN_KEY, seconds=args.probe_seconds
        )
    except BaseException:
        print(f"controller log kept in {workdir}", file=sys.stderr)
        raise
    else:
        if args.keep_logs:
            print(f"controller log: {controller.log_path}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    finally:
        if controller is not None:
            controller.stop()
        bed.stop()

    n = args.claims
    lower = math.ceil(n / args.heketi_inflight) * args.heketi_latency
    heketi_total = sum(v for k, v in heketi.items() if k != "throttled")
    return rounded(
        {
            "kind": args.kind,
            "claims": n,
            "total_seconds": total,
            "lower_bound_seconds": lower,
            "ratio": lower / total if total > 0 else 0.0,
            "bound_seconds_p50": percentile(latencies, 50),
            "bound_seconds_p99": percentile(latencies, 99),
            # Lease renewals (leader election) go on whether claims come or not.
            "kube_writes_per_claim": sum(v for k, v in writes.items() if "leases" not in k) / n,
            "kube_writes": writes,
            "heketi_requests_per_claim": heketi_total / n,
            "heketi_non_poll_requests_per_claim": (heketi_total - heketi["polls"]) / n,
            "heketi_creates_per_claim": heketi["create"] / n,
            "heketi_polls_per_claim": heketi["polls"] / n,
            "heketi_reads_per_claim": heketi["reads"] / n,
            "throttled": heketi["throttled"],
            "heketi_busy_fraction": in_flight / args.heketi_inflight,
            "controller_cpu_seconds": cpu,
            "controller_cpu_ms_per_claim": cpu * 1000 / n,
            "secret_reads": secret_reads,
            "controller_peak_rss_mb": rss,
            # The test bed's own CPU over the same window: near total_seconds means the
            # sandboxes, not the controller, set the pace.
            "testbed_cpu_seconds": bed_cpu,
            "heketi_latency": args.heketi_latency,
            "heketi_inflight": args.heketi_inflight,
            "workers": args.workers if args.workers is not None else "default",
            "heketi_concurrency": (
                args.heketi_concurrency if args.heketi_concurrency is not None else "default"
            ),
            "sandbox_kube_writes_per_second": capacity["kube_writes_per_second"],
            "sandbox_heketi_requests_per_second": capacity["heketi_requests_per_second"],
            "load_average": load_average(),
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=500, help="claims created at once")
    parser.add_argument(
        "--controller-log-level",
        default="info",
        choices=["debug", "info"],
        help="debug to study a run (info or lower: readiness is its start-up line)",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the controller's log")
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default="file",
        help="the claims' class: glusterfs PVs (file), pvtype nfs, or gluster-block (iSCSI)",
    )
    parser.add_argument(
        "--plot", metavar="PNG", help="also draw claims Bound over time (needs matplotlib)"
    )
    add_common_arguments(parser)
    args = parser.parse_args()
    if args.plot:
        import plots

        if not plots.available():
            parser.error(plots.MISSING)
    if args.claims < 1 or args.heketi_inflight < 1 or args.heketi_latency < 0:
        parser.error("--claims and --heketi-inflight must be >= 1, --heketi-latency >= 0")
    return report(run, args, f"throughput: {args.claims} claims at once", TARGETS)


if __name__ == "__main__":
    raise SystemExit(main())

"""Scale: start the controller next to many bound claims it provisioned earlier.

The API sandbox is pre-loaded (in bulk, no watch events) with ``--bound-claims``
claims, their PVs (ours: annotations, finalizer), Endpoints and Services. Then the
controller starts as a child process and we measure: time to /readyz, peak RSS,
the Heketi requests it made at start (there must be none per PV: a bound volume
needs nothing from Heketi), how fast one new claim is Bound once it is ready, and
its CPU use while nothing changes.

    python bench/scale.py --bound-claims 10000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import (
    ControllerProcess,
    add_common_arguments,
    controller_writes,
    heketi_breakdown,
    load_average,
    report,
    rounded,
    wait_until,
)
from fixtures import (
    ADMIN_KEY,
    NAMESPACE,
    BoundWatch,
    claim_body,
    preload_bound,
    start_test_bed,
)
from loadgen import run_loadgen

from provisioner.gluster.annotations import ANN_HEKETI_VOLUME_ID

TARGETS = {
    "ready_seconds": "target <= 10 (at 50,000)",
    "peak_rss_mb": "target <= 120 at 10,000, <= 300 at 50,000",
    "startup_heketi_requests": "target: none per PV",
    "new_claim_bound_seconds": "target <= 2 x heketi latency",
    "idle_cpu_seconds_per_minute": "target <= 0.5",
}

NEW_CLAIM = "scale-new-claim"


def _is_new_claims(record: Any, volume_id: str) -> bool:
    """The new claim's own Heketi traffic: its create, its polls, the read of its volume."""
    return (
        record.method == "POST"
        or record.route.startswith("/queue")
        or record.path.endswith(volume_id)
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    bed = start_test_bed(
        workdir, volumes=1, latency=args.heketi_latency, max_inflight=args.heketi_inflight
    )
    controller: ControllerProcess | None = None
    try:
        started = time.monotonic()
        preload_bound(bed, args.bound_claims)
        preload_seconds = time.monotonic() - started
        bed.heketi.reset_requests()
        bed.kube.clear_request_log()

        controller = ControllerProcess(
            str(bed.kube.kubeconfig_path),
            workdir,
            workers=args.workers,
            heketi_concurrency=args.heketi_concurrency,
            log_level="info",
            profile_to=args.profile_controller,
        )
        ready = controller.wait_ready(timeout=120)
        ready_cpu = controller.cpu_seconds()

        watch = BoundWatch(bed.kube)
        created = time.monotonic()
        bed.kube.create_object("persistentvolumeclaims", claim_body(NEW_CLAIM), NAMESPACE)
        wait_until(
            lambda: watch.count(), timeout=120, what="the new claim to be Bound", interval=0.01
        )
        new_bound = watch.bound[NEW_CLAIM] - created
        claim = bed.kube.get_object("persistentvolumeclaims", NAMESPACE, NEW_CLAIM) or {}
        pv = bed.kube.get_object("persistentvolumes", None, claim["spec"]["volumeName"]) or {}
        volume_id = pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID]

        # Idle: nothing changes from here on. The window is a measurement, not a wait
        # for anything to happen.
        cpu_before = controller.cpu_seconds()
        time.sleep(args.idle_seconds)
        idle_cpu = controller.cpu_seconds() - cpu_before

        records = bed.heketi.requests
        # Split by the rule, not by membership in `own`: records compare by value.
        own = [r for r in records if _is_new_claims(r, volume_id)]
        startup = [r for r in records if not _is_new_claims(r, volume_id)]
        writes = controller_writes(bed.kube.request_log)
        rss = controller.peak_rss_mb()
        controller.stop()
        capacity = run_loadgen(
            str(bed.kube.kubeconfig_path),
            bed.heketi.url,
            ADMIN_KEY,
            seconds=args.probe_seconds,
            list_pvs=True,
        )
    except BaseException:
        print(f"controller log kept in {workdir}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    finally:
        if controller is not None:
            controller.stop()
        bed.stop()

    return rounded(
        {
            "bound_claims": args.bound_claims,
            "ready_seconds": ready,
            # The controller's own CPU up to ready (imports, lists, caches): the rest
            # of ready_seconds is the test bed serving the lists, and waiting.
            "ready_cpu_seconds": ready_cpu,
            "peak_rss_mb": rss,
            "startup_heketi_requests": len(startup),
            "startup_heketi_breakdown": heketi_breakdown(startup),
            "new_claim_bound_seconds": new_bound,
            "new_claim_heketi_requests": heketi_breakdown(own),
            "idle_seconds": args.idle_seconds,
            "idle_cpu_seconds_per_minute": idle_cpu * 60 / args.idle_seconds,
            "kube_writes": writes,
            "heketi_latency": args.heketi_latency,
            "preload_seconds": preload_seconds,
            "sandbox_pv_count": int(capacity["pv_count"]),
            "sandbox_pv_list_paged_seconds": capacity["list_paged_seconds"],
            "sandbox_pv_list_seconds": capacity["list_seconds"],
            "sandbox_kube_writes_per_second": capacity["kube_writes_per_second"],
            "sandbox_heketi_requests_per_second": capacity["heketi_requests_per_second"],
            "load_average": load_average(),
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bound-claims", type=int, default=10000, help="claims pre-loaded")
    parser.add_argument(
        "--idle-seconds", type=float, default=60.0, help="window for the idle CPU figure"
    )
    add_common_arguments(parser)
    args = parser.parse_args()
    if args.bound_claims < 0 or args.idle_seconds <= 0:
        parser.error("--bound-claims must be >= 0 and --idle-seconds > 0")
    return report(run, args, f"scale: {args.bound_claims} bound claims", TARGETS)


if __name__ == "__main__":
    raise SystemExit(main())

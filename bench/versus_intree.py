"""Versus in-tree: a burst of N claims provisioned once by kube-controller-manager
1.25's in-tree ``kubernetes.io/glusterfs`` provisioner and once by ours, on the real
peers (etcd, kube-apiserver and kube-controller-manager 1.25.16, Heketi 10.3.0 with
its mock executor).

Both go through one Heketi, behind ``bench/delay_proxy.py``: each Heketi operation
lasts ``--heketi-latency`` seconds and at most ``--heketi-inflight`` run at once; the
proxy answers Heketi's own 429 beyond that (the mock executor finishes operations in
microseconds, so Heketi's own limit, set to the same value, is never reached). Each
provisioner gets its own Heketi cluster (1000 volumes per cluster at most) and
namespace; in-tree runs first, ours second, in the same Kubernetes cluster.

    python bench/versus_intree.py --claims 200 [--json]

Prints one JSON object with ``--json`` (``claims``, ``speedup`` = ours' throughput
over in-tree's, and ``intree`` / ``ours`` with the same keys), a table otherwise;
progress on stderr. Exit 2 when the peers are not built, or the run could not end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from delay_proxy import HeketiProxy, breakdown  # noqa: E402 - bench/ is the script's dir

NOT_BUILT = "real peers not built: run testbeds/peers/build (needs Go >= 1.26), then retry"
ADMIN_USER = "real-peers-admin"  # the admin certificate's CN: the benchmark's own writes
KEYS = (
    "total_seconds",
    "bound_seconds_p50",
    "bound_seconds_p99",
    "throttled",
    "heketi_requests_per_claim",
    "kube_writes_per_claim",
    "cpu_seconds",
    "peak_rss_mb",
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START = time.monotonic()


class BenchError(Exception):
    """The run could not end (never raised for being slow)."""


def progress(message: str) -> None:
    print(f"[versus +{time.monotonic() - START:6.1f}s] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """Nearest rank (q in 0..100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return float(ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1])


def utc_mark() -> str:
    """Now, as the audit log writes requestReceivedTimestamp (RFC 3339, microseconds)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident memory since it started, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmHWM for pid {pid}")


def wait(probe: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise BenchError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)  # the polling interval of a condition with a deadline


# -- watching claims ------------------------------------------------------------------


class BoundWatch:
    """Watches the claims of one namespace; ``bound[name]`` = monotonic time it was
    first seen Bound with a volume name."""

    def __init__(self, kube: Any, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.bound: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.verify = kube.session.verify
        self._session.cert = kube.session.cert
        path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"
        listed = kube.get(path)
        self._rv = listed["metadata"]["resourceVersion"]
        for item in listed["items"]:
            self._see(item)
        self._thread = threading.Thread(target=self._run, name="bound-watch", daemon=True)
        self._thread.start()

    def _see(self, claim: dict[str, Any]) -> None:
        if claim.get("status", {}).get("phase") == "Bound" and claim["spec"].get("volumeName"):
            with self._lock:
                self.bound.setdefault(claim["metadata"]["name"], time.monotonic())

    def _run(self) -> None:
        url = f"{self.kube.server}/api/v1/namespaces/{self.namespace}/persistentvolumeclaims"
        while not self._stop.is_set():
            try:
                with self._session.get(
                    url,
                    params={"watch": "1", "resourceVersion": self._rv, "timeoutSeconds": "300"},
                    stream=True,
                    timeout=(10, 330),
                ) as r:
                    for line in r.iter_lines():
                        if self._stop.is_set():
                            return
                        if not line:
                            continue
                        event = json.loads(line)
                        obj = event.get("object", {})
                        if event.get("type") == "ERROR":
                            listed = self.kube.get(
                                f"/api/v1/namespaces/{self.namespace}/persistentvolumeclaims"
                            )
                            self._rv = listed["metadata"]["resourceVersion"]
                            for item in listed["items"]:
                                self._see(item)
                            break
                        self._rv = obj.get("metadata", {}).get("resourceVersion", self._rv)
                        self._see(obj)
            except (requests.RequestException, ValueError):
                if self._stop.wait(0.5):
                    return

    def count(self) -> int:
        with self._lock:
            return len(self.bound)

    def stop(self) -> None:
        self._stop.set()
        self._session.close()


# -- one run --------------------------------------------------------------------------


def claim_body(name: str, class_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": class_name,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }


def succeeded_events(kube: Any, namespace: str) -> int:
    """Claims of ``namespace`` with a ProvisioningSucceeded event (the provisioner's
    last write for a claim)."""
    items = kube.get(
        f"/api/v1/namespaces/{namespace}/events?fieldSelector=reason%3DProvisioningSucceeded"
    )["items"]
    return len({e["involvedObject"]["uid"] for e in items})


def burst(
    kube: Any,
    *,
    label: str,
    namespace: str,
    class_name: str,
    claims: int,
    proxy: HeketiProxy,
    audit_log: Path,
    controller_pid: int,
    kcm_pid: int,
    timeout: float,
) -> dict[str, Any]:
    """N claims at once; figures once all are Bound and have their success event."""
    watch = BoundWatch(kube, namespace)
    proxy.reset()
    mark = utc_mark()
    cpu0, kcm_cpu0 = cpu_seconds(controller_pid), cpu_seconds(kcm_pid)
    created: dict[str, float] = {}
    path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims"

    def create(i: int) -> None:
        name = f"claim-{i:05d}"
        kube.create(path, claim_body(name, class_name))
        created[name] = time.monotonic()

    first = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(claims)))
    progress(f"{label}: {claims} claims created in {time.monotonic() - first:.1f} s")
    last_report = [time.monotonic()]

    def all_bound() -> bool:
        n = watch.count()
        if time.monotonic() - last_report[0] >= 10:
            last_report[0] = time.monotonic()
            throttled = sum(1 for r in proxy.records() if r.status == 429)
            progress(f"{label}: {n}/{claims} bound, {throttled} throttled so far")
        return n >= claims

    try:
        wait(all_bound, timeout, f"{label}: {claims} claims Bound", interval=0.05)
    finally:
        watch.stop()
    bound = dict(watch.bound)
    total = max(bound[n] for n in created) - first
    cpu, kcm_cpu = cpu_seconds(controller_pid) - cpu0, cpu_seconds(kcm_pid) - kcm_cpu0
    progress(f"{label}: all bound after {total:.1f} s; waiting for the success events")
    wait(lambda: succeeded_events(kube, namespace) >= claims, 120, f"{label}: success events")
    end = utc_mark()
    latencies = [bound[n] - created[n] for n in created]
    records = proxy.records()
    heketi = breakdown(records)
    paths = Counter(f"{r.method} {r.path.rsplit('/', 1)[0] if r.path.count('/') > 1 else r.path}"
                    for r in records)  # fmt: skip
    writes = [
        e
        for e in audit_events(audit_log, mark, end)
        if e["user"]["username"] != ADMIN_USER  # the benchmark's own claims
        and e["objectRef"].get("subresource") != "token"  # controllers' credential refresh
        and e["responseStatus"]["code"] < 400
    ]
    by_user = Counter(_write_key(e) for e in writes)
    return {
        "total_seconds": round(total, 3),
        "bound_seconds_p50": round(percentile(latencies, 50), 3),
        "bound_seconds_p99": round(percentile(latencies, 99), 3),
        "throttled": heketi["throttled"],
        "heketi_requests_per_claim": round(len(records) / claims, 3),
        "kube_writes_per_claim": round(len(writes) / claims, 3),
        "cpu_seconds": round(cpu, 2),
        "peak_rss_mb": round(peak_rss_mb(controller_pid), 1),
        "heketi_requests": heketi,
        "heketi_requests_by_route": dict(sorted(paths.items())),
        "kube_writes": dict(sorted(by_user.items())),
        "kube_controller_manager_cpu_seconds": round(kcm_cpu, 2),
    }


def _write_key(e: dict[str, Any]) -> str:
    """``<user> <verb> <resource>[/<subresource>]``, service accounts without prefix."""
    user = e["user"]["username"].removeprefix("system:serviceaccount:")
    ref = e["objectRef"]
    sub = f"/{ref['subresource']}" if ref.get("subresource") else ""
    return f"{user} {e['verb']} {ref.get('resource', '')}{sub}"


def audit_events(path: Path, since: str, until: str) -> Iterator[dict[str, Any]]:
    with path.open() as f:
        for line in f:
            e = json.loads(line)
            received = e.get("requestReceivedTimestamp", "")
            if e.get("stage") == "ResponseComplete" and since <= received <= until:
                yield e


def two_cluster_topology(default_topology: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """Two Heketi clusters of 3 nodes x 4 devices (500 GiB each in the mock): room for
    1000 replica-3 volumes of 1 GiB per cluster, Heketi's per-cluster maximum."""
    a = default_topology(3, devices=4, storage_ips=["192.0.2.11", "192.0.2.12", "192.0.2.13"])
    b = default_topology(3, devices=4, storage_ips=["192.0.2.21", "192.0.2.22", "192.0.2.23"])
    for i, node in enumerate(b["clusters"][0]["nodes"]):
        node["node"]["hostnames"]["manage"] = [f"node{i + 4}"]
    return {"clusters": a["clusters"] + b["clusters"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from testbeds.harness.controller import install_rbac, make_namespace, start_controller
    from testbeds.peers import (
        HEKETI_ADMIN_KEY,
        default_topology,
        find_peers,
        start_heketi,
        start_kube,
    )
    from tests.real.intree import INTREE, OURS, make_class, make_secret

    peers = find_peers()
    workdir = Path(args.workdir) if args.workdir else None
    with contextlib.ExitStack() as stack:
        if workdir is None:
            import tempfile

            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="versus-")))
        workdir.mkdir(parents=True, exist_ok=True)
        audit_log = workdir / "audit.log"
        progress("starting Kubernetes 1.25 (audit log on) and Heketi")
        kube = stack.enter_context(
            start_kube(
                peers,
                "1.25",
                workdir / "kube",
                audit_log=audit_log,
                # every volume's Service takes a ClusterIP: room for both bursts
                service_cidr="10.0.0.0/16",
                kcm_args=[f"--kube-api-qps={args.kcm_qps}", f"--kube-api-burst={args.kcm_burst}"],
            )
        )
        heketi = stack.enter_context(
            start_heketi(
                peers,
                workdir / "heketi",
                loglevel="warning",
                max_inflight=args.heketi_inflight,
                topology=two_cluster_topology(default_topology),
            )
        )
        proxy = stack.enter_context(
            HeketiProxy(heketi.url, latency=args.heketi_latency, max_inflight=args.heketi_inflight)
        )
        assert kube.controller_manager is not None
        kcm_pid = kube.controller_manager.proc.pid
        make_secret(kube, "bench-secrets", "heketi-key", {"key": HEKETI_ADMIN_KEY})
        base = {
            "resturl": proxy.url,
            "restuser": "admin",
            "secretNamespace": "bench-secrets",
            "secretName": "heketi-key",
            "volumetype": "replicate:3",
        }
        clusters = sorted(heketi.cluster_ids)
        make_class(kube, "bench-intree", INTREE, {**base, "clusterid": clusters[0]})
        make_class(kube, "bench-ours", OURS, {**base, "clusterid": clusters[1]})
        for ns in ("bench-intree", "bench-ours"):
            make_namespace(kube, ns)
        install_rbac(kube)
        timeout = args.timeout or 300 + 2.0 * args.claims
        results: dict[str, Any] = {}
        if "intree" in args.only:
            progress(f"in-tree: {args.claims} claims")
            results["intree"] = burst(
                kube,
                label="in-tree",
                namespace="bench-intree",
                class_name="bench-intree",
                claims=args.claims,
                proxy=proxy,
                audit_log=audit_log,
                controller_pid=kcm_pid,
                kcm_pid=kcm_pid,
                timeout=timeout,
            )
        if "ours" in args.only:
            progress(f"ours: starting the controller, then {args.claims} claims")
            controller = start_controller(
                kube,
                log_path=workdir / "controller.log",
                # its defaults (start_controller's 4 workers are for tests)
                extra_args=["--workers=16", "--heketi-concurrency=8"],
            )
            try:
                results["ours"] = burst(
                    kube,
                    label="ours",
                    namespace="bench-ours",
                    class_name="bench-ours",
                    claims=args.claims,
                    proxy=proxy,
                    audit_log=audit_log,
                    controller_pid=controller.pid,
                    kcm_pid=kcm_pid,
                    timeout=timeout,
                )
            finally:
                controller.stop()
        progress("done; stopping the peers")
    out: dict[str, Any] = {"claims": args.claims}
    if "intree" in results and "ours" in results:
        out["speedup"] = round(
            results["intree"]["total_seconds"] / results["ours"]["total_seconds"], 3
        )
    out.update(results)
    out.update(
        {
            "heketi_latency": args.heketi_latency,
            "heketi_inflight": args.heketi_inflight,
            "kcm_kube_api_qps": args.kcm_qps,
            "kcm_kube_api_burst": args.kcm_burst,
            "kube_version": peers.kube_version("1.25"),
            "heketi_version": peers.env.get("HEKETI_VERSION", "?"),
            "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg())
            + f" on {os.cpu_count()} CPUs",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        }
    )
    return out


def table(out: dict[str, Any]) -> str:
    lines = [
        f"versus in-tree: {out['claims']} claims at once, Heketi latency "
        f"{out['heketi_latency']} s, {out['heketi_inflight']} in flight, "
        f"kube-controller-manager --kube-api-qps {out['kcm_kube_api_qps']:g}",
        f"{'':<28}{'in-tree':>12}{'ours':>12}",
    ]
    for key in KEYS:
        row = f"{key:<28}"
        for side in ("intree", "ours"):
            value = out.get(side, {}).get(key, "")
            row += f"{value:>12}" if not isinstance(value, float) else f"{value:>12.3f}"
        lines.append(row)
    if "speedup" in out:
        lines.append(f"{'speedup (throughput)':<28}{out['speedup']:>24.2f}x")
    lines.append(f"load average {out['load_average']}, {out['date']}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=200, help="claims created at once")
    parser.add_argument("--heketi-latency", type=float, default=0.2, help="seconds per operation")
    parser.add_argument("--heketi-inflight", type=int, default=8, help="Heketi's in-flight limit")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--only", default="intree,ours", help="intree, ours or both (comma-separated)"
    )
    parser.add_argument("--timeout", type=float, help="seconds for each burst to be Bound")
    parser.add_argument(
        "--kcm-qps",
        type=float,
        default=20,
        help="kube-controller-manager --kube-api-qps (20: its default, per controller)",
    )
    parser.add_argument(
        "--kcm-burst", type=int, default=30, help="kube-controller-manager --kube-api-burst (30)"
    )
    parser.add_argument("--workdir", help="keep logs and the audit log here")
    args = parser.parse_args()
    args.only = {s.strip() for s in args.only.split(",")}
    if args.claims < 1 or args.heketi_inflight < 1 or args.heketi_latency < 0:
        parser.error("--claims and --heketi-inflight must be >= 1, --heketi-latency >= 0")
    if args.claims > 900:
        parser.error("--claims at most 900 (Heketi holds 1000 volumes per cluster)")
    if not args.only or args.only - {"intree", "ours"}:
        parser.error("--only takes intree, ours or both")
    from testbeds.peers import PeersNotBuilt

    try:
        out = run(args)
    except PeersNotBuilt:
        print(NOT_BUILT, file=sys.stderr)
        return 2
    except (BenchError, TimeoutError, RuntimeError) as err:
        print(f"benchmark could not finish: {err}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2) if args.json else table(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The benchmarks, small: they run to the end and print every figure with a sane type.

Run exactly as documented (a child ``python bench/<name>.py --json``), so a broken
flag or import shows up here. Nothing is asserted about time: these machines are
shared, and the benchmarks exist to print figures, not to judge them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"

NUMBER = (int, float)

THROUGHPUT_KEYS: dict[str, Any] = {
    "claims": int,
    "total_seconds": NUMBER,
    "lower_bound_seconds": NUMBER,
    "ratio": NUMBER,
    "bound_seconds_p50": NUMBER,
    "bound_seconds_p99": NUMBER,
    "kube_writes_per_claim": NUMBER,
    "kube_writes": dict,
    "heketi_requests_per_claim": NUMBER,
    "heketi_non_poll_requests_per_claim": NUMBER,
    "heketi_creates_per_claim": NUMBER,
    "heketi_polls_per_claim": NUMBER,
    "heketi_reads_per_claim": NUMBER,
    "throttled": int,
    "controller_cpu_seconds": NUMBER,
    "controller_peak_rss_mb": NUMBER,
    "controller_cpu_ms_per_claim": NUMBER,
    "secret_reads": int,
    "sandbox_kube_writes_per_second": NUMBER,
    "sandbox_heketi_requests_per_second": NUMBER,
    "load_average": str,
}

SCALE_KEYS: dict[str, Any] = {
    "bound_claims": int,
    "ready_seconds": NUMBER,
    "ready_cpu_seconds": NUMBER,
    "peak_rss_mb": NUMBER,
    "startup_heketi_requests": int,
    "startup_heketi_breakdown": dict,
    "new_claim_bound_seconds": NUMBER,
    "new_claim_heketi_requests": dict,
    "idle_seconds": NUMBER,
    "idle_cpu_seconds_per_minute": NUMBER,
    "kube_writes": dict,
    "sandbox_pv_count": int,
    "sandbox_pv_list_paged_seconds": NUMBER,
    "sandbox_pv_list_seconds": NUMBER,
    "sandbox_kube_writes_per_second": NUMBER,
    "sandbox_heketi_requests_per_second": NUMBER,
    "load_average": str,
}


def run_bench(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--json", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def check_keys(figures: dict[str, Any], expected: dict[str, Any]) -> None:
    missing = sorted(set(expected) - set(figures))
    assert not missing, f"missing keys: {missing}"
    for key, kind in expected.items():
        value = figures[key]
        assert isinstance(value, kind) and not isinstance(value, bool), (key, value)
        if isinstance(value, NUMBER):
            assert value >= 0, (key, value)


@pytest.mark.timeout(300)
def test_throughput_runs_and_reports_every_figure() -> None:
    figures = run_bench(
        "throughput.py",
        "--claims", "20",
        "--heketi-latency", "0.05",
        "--heketi-inflight", "4",
        "--probe-seconds", "0.3",
    )  # fmt: skip
    check_keys(figures, THROUGHPUT_KEYS)
    assert figures["claims"] == 20
    # ceil(20 / 4) operations of 0.05 s each: the formula, not a timing.
    assert figures["lower_bound_seconds"] == pytest.approx(0.25)
    assert figures["heketi_creates_per_claim"] >= 1
    assert figures["kube_writes"].get("create persistentvolumes") == 20


@pytest.mark.timeout(300)
def test_scale_runs_and_reports_every_figure() -> None:
    figures = run_bench(
        "scale.py",
        "--bound-claims", "300",
        "--idle-seconds", "2",
        "--heketi-latency", "0.05",
        "--probe-seconds", "0.3",
    )  # fmt: skip
    check_keys(figures, SCALE_KEYS)
    assert figures["bound_claims"] == 300
    assert figures["sandbox_pv_count"] == 301  # the pre-loaded ones and the new claim's
    assert figures["new_claim_heketi_requests"]["create"] == 1


@pytest.mark.timeout(300)
def test_resize_clone_requests_runs_and_counts_each_operation() -> None:
    figures = run_bench("resize_clone_requests.py")
    grow, clone = figures["resize_1_to_3_gib"], figures["clone_1_gib_into_4_gib"]
    assert grow["heketi"].get("POST /volumes/{id}/expand 202") == 1, grow
    assert grow["kube"].get("patch persistentvolumeclaims/status") == 1, grow
    assert clone["heketi"].get("POST /volumes/{id}/clone 202") == 1, clone
    assert clone["kube"].get("create persistentvolumes") == 1, clone
    for counts in (grow, clone):
        assert counts["heketi_total"] == sum(counts["heketi"].values())
        assert counts["kube_total"] == sum(counts["kube"].values())


TAKEOVER_KEYS: dict[str, Any] = {
    "bound_claims": int,
    "lease_duration": NUMBER,
    "bound_after_kill_seconds": NUMBER,
    "standby_started_after_kill_seconds": NUMBER,
    "standby_warm": bool,
    "standby_peak_rss_mb": NUMBER,
    "standby_cpu_seconds_per_minute": NUMBER,
    "load_average": str,
}


@pytest.mark.timeout(300)
def test_takeover_runs_and_reports_every_figure() -> None:
    figures = run_bench(
        "takeover.py",
        "--bound-claims", "200",
        "--lease-duration", "3",
        "--standby-seconds", "0.5",
        "--heketi-latency", "0.05",
    )  # fmt: skip
    standby_warm = figures.pop("standby_warm")
    check_keys(figures, {k: v for k, v in TAKEOVER_KEYS.items() if k != "standby_warm"})
    assert standby_warm is True  # the standby said its caches were synced before leading
    assert figures["bound_claims"] == 200
    # Nobody can take an unreleased Lease before it expires: a fact, not a timing.
    assert figures["bound_after_kill_seconds"] > figures["lease_duration"] - 1

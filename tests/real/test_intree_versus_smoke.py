"""``bench/versus_intree.py`` at toy size (5 claims), run exactly as documented: it
runs to the end and prints its fixed JSON keys with sane types. Nothing is asserted
about time (shared machines; the benchmark prints figures, it does not judge them)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from testbeds.peers import REPO, Peers

pytestmark = pytest.mark.timeout(240)

SIDE_KEYS = {
    "total_seconds": (int, float),
    "bound_seconds_p50": (int, float),
    "bound_seconds_p99": (int, float),
    "throttled": int,
    "heketi_requests_per_claim": (int, float),
    "kube_writes_per_claim": (int, float),
    "cpu_seconds": (int, float),
    "peak_rss_mb": (int, float),
}


def test_versus_intree_runs_and_prints_its_keys(real_peers: Peers) -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "versus_intree.py"), "--claims", "5", "--json"],
        capture_output=True,
        text=True,
        timeout=220,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    figures = json.loads(out.stdout)
    assert figures["claims"] == 5
    assert isinstance(figures["speedup"], (int, float)) and figures["speedup"] > 0
    for side in ("intree", "ours"):
        for key, kind in SIDE_KEYS.items():
            assert isinstance(figures[side][key], kind), (side, key, figures[side][key])
        assert figures[side]["heketi_requests"]["create"] == 5
    assert "[versus +" in out.stderr  # progress goes to stderr, only JSON to stdout

"""bench/plots.py draws readable PNGs from plain lists, `throughput.py --plot` draws one
from its own run, and the pictures the documentation shows exist.

matplotlib is optional (the `bench` extra): without it the drawing tests skip.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DOCS_SHOWING_PICTURES = ["bench/README.md", "docs/operations.md"]


def _plots() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_plots", BENCH / "plots.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def plots() -> ModuleType:
    pytest.importorskip("matplotlib", reason="matplotlib not installed (the bench extra)")
    return _plots()


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5_000


def test_bound_over_time_writes_a_png(plots: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "bound.png"
    times = [0.2 * (i // 8) + 0.21 + 0.001 * i for i in range(40)]
    plots.bound_over_time(out, times, heketi_latency=0.2, heketi_inflight=8, title="t")
    assert _is_png(out)


def test_memory_from_scale_json_outputs(plots: ModuleType, tmp_path: Path) -> None:
    results = []
    for n, rss in ((0, 57.0), (1000, 69.5), (10000, 160.0)):
        path = tmp_path / f"scale-{n}.json"
        path.write_text(json.dumps({"bound_claims": n, "peak_rss_mb": rss}))
        results.append(str(path))
    out = tmp_path / "memory.png"
    done = subprocess.run(
        [sys.executable, str(BENCH / "plots.py"), "memory", str(out), *results, "--limit-mb=256"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert _is_png(out)


def test_throughput_plot_from_a_real_run(plots: ModuleType, tmp_path: Path) -> None:
    out = tmp_path / "throughput.png"
    done = subprocess.run(
        [sys.executable, str(BENCH / "throughput.py"), "--claims", "12",
         "--heketi-latency", "0.05", "--probe-seconds", "0.2", "--json", "--plot", str(out)],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["claims"] == 12
    assert _is_png(out)


def test_no_plot_no_matplotlib_import() -> None:
    """The benchmarks run without matplotlib: plots.py imports it only to draw."""
    top_level = re.compile(r"^(import|from) matplotlib", re.M)
    for script in ("plots.py", "throughput.py", "benchlib.py", "fixtures.py", "scale.py"):
        assert not top_level.search((BENCH / script).read_text()), script
    assert "import matplotlib" not in (BENCH / "throughput.py").read_text()


@pytest.mark.parametrize("doc", DOCS_SHOWING_PICTURES)
def test_documented_pictures_exist(doc: str) -> None:
    path = ROOT / doc
    shown = re.findall(r"!\[[^\]]*\]\(([^)\s]+\.png)\)", path.read_text())
    assert shown, f"{doc} shows no picture"
    for target in shown:
        assert _is_png((path.parent / target).resolve()), f"{doc}: {target}"

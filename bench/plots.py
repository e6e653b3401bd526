"""PNG plots of benchmark figures. Needs matplotlib (the optional `bench` extra:
``pip install -e '.[bench]'``); nothing else in bench/ does.

The functions take plain lists, so any benchmark can use them:

- ``bound_over_time``: claims Bound against time during a burst, beside the best Heketi
  allows (``throughput.py --plot PATH`` draws it from its own run);
- ``memory_against_pvs``: the controller's peak RSS against the number of bound PVs it
  started next to. One ``scale.py`` run measures one size, so this one is drawn from the
  ``--json`` output of several runs:

      for n in 1000 2500 5000 10000; do
          .venv/bin/python bench/scale.py --bound-claims $n --json > scale-$n.json
      done
      .venv/bin/python bench/plots.py memory docs/images/scale-memory.png scale-*.json
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MISSING = "plots need matplotlib: .venv/bin/pip install -e '.[bench]'"


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as err:
        raise SystemExit(MISSING) from err
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def bound_over_time(
    path: str | Path,
    bound_seconds: Sequence[float],
    *,
    heketi_latency: float,
    heketi_inflight: int,
    title: str,
) -> None:
    """Claims Bound against seconds since the first claim was created.

    ``bound_seconds``: for each claim, when it was Bound (seconds from the first
    create). The dashed line is Heketi's limit: ``heketi_inflight`` operations every
    ``heketi_latency`` seconds, so no provisioner can bind faster.
    """
    plt = _pyplot()
    times = sorted(bound_seconds)
    n = len(times)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.step([0.0, *times], range(n + 1), where="post", label="claims Bound (measured)")
    if heketi_latency > 0 and n:
        rounds = math.ceil(n / heketi_inflight)
        steps = [i * heketi_latency for i in range(rounds + 1)]
        done = [min(n, i * heketi_inflight) for i in range(rounds + 1)]
        ax.step(steps, done, where="post", linestyle="--", color="grey",
                label=f"Heketi's limit: {heketi_inflight} every {heketi_latency:g} s")  # fmt: skip
    if n:
        summary = f"all {n} Bound after {times[-1]:.2f} s"
        if heketi_latency > 0:
            best = math.ceil(n / heketi_inflight) * heketi_latency
            summary += f"\nHeketi's limit: {best:.2f} s (ratio {best / times[-1]:.2f})"
        ax.text(0.02, 0.97, summary, transform=ax.transAxes, va="top", fontsize=9,
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8})  # fmt: skip
    ax.set_xlabel("seconds since the first claim was created")
    ax.set_ylabel("claims Bound")
    ax.set_title(title)
    ax.set_xlim(0, (times[-1] if n else 1) * 1.03)
    ax.set_ylim(0, max(n, 1) * 1.03)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def memory_against_pvs(
    path: str | Path,
    bound_claims: Sequence[int],
    peak_rss_mb: Sequence[float],
    *,
    title: str,
    limit_mb: float | None = None,
) -> None:
    """Peak RSS (MiB, as benchlib reads VmHWM) against the number of bound PVs;
    ``limit_mb`` draws a line (the Deployment's memory limit, say)."""
    plt = _pyplot()
    points = sorted(zip(bound_claims, peak_rss_mb, strict=True))
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label="peak RSS")
    span = max(p[0] for p in points) or 1
    labelled = -span
    for x, y in reversed(points):  # the largest first; skip labels that would touch
        if labelled - x >= 0.06 * span or labelled < 0:
            ax.annotate(f"{y:.0f} MiB", (x, y), xytext=(0, 7), textcoords="offset points",
                        ha="center", fontsize=8)  # fmt: skip
            labelled = x
    if limit_mb is not None:
        ax.axhline(limit_mb, linestyle="--", color="grey", label=f"memory limit {limit_mb:g} MiB")
    ax.set_xlabel("bound PVs at start")
    ax.set_ylabel("controller peak RSS (MiB)")
    ax.set_title(title)
    top = max([p[1] for p in points] + [limit_mb or 0])
    ax.set_xlim(0, span * 1.05)
    ax.set_ylim(0, top * 1.15)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Plot benchmark results saved with --json.")
    sub = parser.add_subparsers(dest="plot", required=True)
    memory = sub.add_parser("memory", help="peak RSS against bound PVs, from scale.py --json")
    memory.add_argument("out", help="PNG to write")
    memory.add_argument("results", nargs="+", help="scale.py --json outputs, one per size")
    memory.add_argument("--limit-mb", type=float, help="draw a memory limit line")
    args = parser.parse_args(argv)
    runs: list[dict[str, Any]] = [json.loads(Path(p).read_text()) for p in args.results]
    memory_against_pvs(
        args.out,
        [int(run["bound_claims"]) for run in runs],
        [float(run["peak_rss_mb"]) for run in runs],
        title="scale.py: controller peak RSS against the bound PVs it starts next to",
        limit_mb=args.limit_mb,
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""helm and promtool, built from their pinned Go modules by ``tools/build-go-tools``.

Found once per session. Missing, a test that needs one is skipped with one line
saying how to build it, or fails when ``HEKETI_PROVISIONER_GO_TOOLS=require`` (as in
``.ci/run``), so CI cannot pass by skipping them.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

import pytest

BUILD_TOOLS = Path(__file__).resolve().parents[1] / "tools" / "build-go-tools"


@cache
def _built() -> dict[str, str]:
    out = subprocess.run(
        [str(BUILD_TOOLS), "--check", "--print-env"], capture_output=True, text=True, timeout=30
    )
    if out.returncode != 0:
        return {}
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def go_tool(name: str) -> str:
    """The path of ``name`` (``helm`` or ``promtool``), or skip/fail saying how to get it."""
    path = _built().get(name.upper())
    if path is None:
        message = f"{name} not built: run tools/build-go-tools"
        if os.environ.get("HEKETI_PROVISIONER_GO_TOOLS") == "require":
            pytest.fail(message)
        pytest.skip(message)
    return path

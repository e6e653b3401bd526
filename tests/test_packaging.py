"""Packaging facts other issues rely on: the console script and the module entry."""

from __future__ import annotations

import subprocess
import sys


def test_module_entry_point_prints_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "provisioner", "--help"], capture_output=True, text=True, check=True
    )
    assert "heketi-provisioner" in out.stdout
    assert "sandbox" in out.stdout


def test_typed_markers_are_shipped() -> None:
    from pathlib import Path

    import heketi_client
    import provisioner

    for pkg in (heketi_client, provisioner):
        assert (Path(pkg.__file__).parent / "py.typed").is_file()

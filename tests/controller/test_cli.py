"""The command line: documented flags and environment variables, and the sandbox demo."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from provisioner.cli import _elector, build_parser, settings_from


def help_of(command: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", command, "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    return result.stdout


def test_run_help_lists_every_flag_with_its_environment_variable() -> None:
    text = help_of("run")
    for flag in (
        "--kubeconfig",
        "--provisioner-name",
        "--workers",
        "--heketi-concurrency",
        "--assume-glusterfs-plugin",
        "--metrics-address",
        "--log-format",
        "--log-level",
    ):
        assert flag in text
        env = "HEKETI_PROVISIONER_" + flag[2:].replace("-", "_").upper()
        assert env in text


def test_sandbox_help_has_the_fixed_option_names() -> None:
    text = help_of("sandbox")
    for flag in (
        "--kubeconfig-out",
        "--kube-port",
        "--kube-version",
        "--heketi-port",
        "--heketi-admin-key",
        "--heketi-latency",
        "--heketi-max-inflight",
        "--without-controller",
        "--serve",
        "--demo",
    ):
        assert flag in text
    top = subprocess.run(
        [sys.executable, "-m", "provisioner", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("run", "sandbox", "audit"):
        assert command in top


def test_environment_sets_defaults_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEKETI_PROVISIONER_WORKERS", "3")
    monkeypatch.setenv("HEKETI_PROVISIONER_ASSUME_GLUSTERFS_PLUGIN", "true")
    monkeypatch.setenv("HEKETI_PROVISIONER_PROVISIONER_NAME", "kubernetes.io/glusterfs")
    settings = settings_from(build_parser().parse_args(["run", "--workers", "5"]))
    assert settings.workers == 5
    assert settings.assume_glusterfs_plugin is True
    assert settings.provisioner_name == "kubernetes.io/glusterfs"
    assert settings.kubeconfig is None


def test_timeouts_reach_the_settings_and_the_elector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEKETI_PROVISIONER_HEKETI_TIMEOUT", "7")
    args = build_parser().parse_args(["run", "--leader-election-lease-duration", "6"])
    settings = settings_from(args)
    assert settings.heketi_timeout == 7.0
    assert settings.leader_election_lease_duration == 6.0
    elector = _elector(
        SimpleNamespace(kube=None),  # type: ignore[arg-type]
        settings,
        threading.Event(),
        threading.Event(),
    )
    assert (elector.lease_duration, elector.renew_deadline) == (6.0, 4.0)
    assert elector.retry_period == pytest.approx(0.8)
    with pytest.raises(ValueError, match="lease_duration"):
        settings_from(build_parser().parse_args(["run", "--leader-election-lease-duration", "1"]))


def test_sandbox_demo_exits_zero(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "provisioner",
            "sandbox",
            "--demo",
            "--kubeconfig-out",
            str(tmp_path / "sandbox.kubeconfig"),
        ],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo completed: every step held" in result.stdout
    assert "Bound after" in result.stdout

"""The command line: documented flags and environment variables, and the sandbox demo."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from provisioner.app import leader_elector
from provisioner.cli import build_parser, settings_from


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
    elector = leader_elector(
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
    assert "nfs        server nfs-vip.gluster.local" in result.stdout
    assert "iqn.2016-12.org.gluster-block:" in result.stdout


def _without_our_variables() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("HEKETI_PROVISIONER_")}


@pytest.mark.parametrize(
    ("env", "argv", "named"),
    [
        ({"HEKETI_PROVISIONER_WORKERS": "abc"}, ["run"], "HEKETI_PROVISIONER_WORKERS='abc'"),
        ({}, ["run", "--workers", "abc"], "--workers"),
        ({"HEKETI_PROVISIONER_WORKERS": "0"}, ["run"], "HEKETI_PROVISIONER_WORKERS:"),
        ({"HEKETI_PROVISIONER_WORKERS": "4"}, ["run", "--workers=0"], "--workers:"),
        ({"HEKETI_PROVISIONER_LOG_FORMAT": "xml"}, ["run"], "HEKETI_PROVISIONER_LOG_FORMAT"),
        ({}, ["run", "--log-format", "xml"], "--log-format"),
        ({"HEKETI_PROVISIONER_NO_LEADER_ELECTION": "maybe"}, ["run"], "NO_LEADER_ELECTION"),
        ({"HEKETI_PROVISIONER_HEKETI_TIMEOUT": "-1"}, ["run"], "HEKETI_PROVISIONER_HEKETI_TIMEOUT"),
        ({}, ["run", "--leader-election-lease-duration", "1"], "--leader-election-lease"),
        ({}, ["run", "--metrics-address", "nowhere"], "--metrics-address"),
        ({}, ["run", "--kubeconfig", "/nonexistent/kubeconfig"], "--kubeconfig"),
        ({"HEKETI_PROVISIONER_KUBECONFIG": "/nope"}, ["run"], "HEKETI_PROVISIONER_KUBECONFIG"),
        ({"HEKETI_PROVISIONER_KUBE_PORT": "high"}, ["sandbox"], "HEKETI_PROVISIONER_KUBE_PORT"),
    ],
)
def test_a_bad_value_is_one_line_naming_it_and_exit_2(
    env: dict[str, str], argv: list[str], named: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={**_without_our_variables(), **env},
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("heketi-provisioner: error: ")
    assert named in lines[0]
    assert result.stdout == ""

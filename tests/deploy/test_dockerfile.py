"""The Dockerfile (which cannot be built here) checked as text against setup.cfg."""

from __future__ import annotations

import configparser
import fnmatch
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = pending + line
        pending = ""
        keyword, _, rest = whole.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def _all(keyword: str) -> list[str]:
    return [rest for kw, rest in _instructions() if kw == keyword]


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def _copied() -> set[str]:
    sources: set[str] = set()
    for rest in _all("COPY"):
        words = [w for w in shlex.split(rest) if not w.startswith("--")]
        sources.update(w.rstrip("/") for w in words[:-1])
    return sources


def _ignored() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _arg_defaults() -> dict[str, str]:
    """ARG NAME=default lines (before FROM: the only ones FROM can use)."""
    defaults: dict[str, str] = {}
    for rest in _all("ARG"):
        name, sep, default = rest.partition("=")
        if sep:
            defaults[name.strip()] = default.strip()
    return defaults


def test_base_image_is_python_slim_pinned_by_tag() -> None:
    (base,) = _all("FROM")  # a single stage
    image = base.split()[0]
    # FROM ${BASE_IMAGE}: the default is what a plain `docker build` uses
    arg = re.fullmatch(r"\$\{?(\w+)\}?", image)
    if arg:
        image = _arg_defaults()[arg.group(1)]
    name, _, tag = image.split("@")[0].partition(":")
    assert name == "python"
    assert tag and tag != "latest"
    assert re.fullmatch(r"3\.\d+(\.\d+)?-slim(-[a-z]+)?", tag), tag
    # The interpreter satisfies python_requires.
    minimum = _setup_cfg()["options"]["python_requires"].removeprefix(">=")
    major, minor = (int(p) for p in tag.split("-")[0].split(".")[:2])
    assert (major, minor) >= tuple(int(p) for p in minimum.split("."))


def test_runs_as_a_numeric_non_root_user() -> None:
    users = _all("USER")
    assert users, "no USER: the image would run as root"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) != 0
    assert not group or (group.isdigit() and int(group) != 0)
    assert int(user) == 65532  # what the Deployment's runAsUser expects
    # USER comes after every RUN: nothing else runs as root at the end.
    order = [kw for kw, _ in _instructions()]
    assert max(i for i, kw in enumerate(order) if kw == "RUN") < order.index("USER")


def test_installs_the_project_root_without_test_extras() -> None:
    runs = " ".join(_all("RUN"))
    assert re.search(r"pip install --no-cache-dir \.(\s|$)", runs), runs
    assert "[test]" not in (ROOT / "Dockerfile").read_text()
    # `.` is the WORKDIR the sources were copied into.
    order = _instructions()
    install = next(i for i, (kw, rest) in enumerate(order) if kw == "RUN" and "pip install" in rest)
    workdirs = [rest for kw, rest in order[:install] if kw == "WORKDIR"]
    assert workdirs and workdirs[-1] == "/src"


def test_copies_what_setup_cfg_builds() -> None:
    cfg = _setup_cfg()
    assert cfg["metadata"]["name"] == "heketi-provisioner"
    packages = {
        line.strip()
        for line in cfg["options.packages.find"]["include"].splitlines()
        if line.strip() and "." not in line
    }
    long_description = cfg["metadata"]["long_description"].removeprefix("file:").strip()
    needed = {"setup.cfg", "pyproject.toml", long_description} | packages
    assert needed <= _copied()
    for source in _copied():
        assert (ROOT / source).exists(), source


def test_entrypoint_runs_the_console_script() -> None:
    (entrypoint,) = _all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["heketi-provisioner", "run"]
    assert not _all("CMD")
    scripts = _setup_cfg()["options.entry_points"]["console_scripts"]
    targets = dict(
        (part.strip() for part in line.split("=", 1)) for line in scripts.splitlines() if line
    )
    assert targets["heketi-provisioner"] == "provisioner.cli:main"


def test_run_subcommand_exists() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "provisioner", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr


def test_deployment_flags_are_known_to_run() -> None:
    """Active once the controller's flags exist: every flag the Deployment passes."""
    out = subprocess.run(
        [sys.executable, "-m", "provisioner", "run", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "--provisioner-name" not in out.stdout:
        pytest.skip("`heketi-provisioner run` has no flags yet")
    deployment = yaml.safe_load((ROOT / "manifests" / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    for arg in container["args"]:
        assert arg.split("=", 1)[0] in out.stdout, arg


def test_environment_and_port() -> None:
    env: dict[str, str] = {}
    for rest in _all("ENV"):
        env.update(word.split("=", 1) for word in shlex.split(rest))
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert _all("EXPOSE") == ["8080"]


def test_image_version_label_matches_the_package() -> None:
    labels = " ".join(_all("LABEL"))
    version = _setup_cfg()["metadata"]["version"]
    assert f'org.opencontainers.image.version="{version}"' in labels


def test_dockerignore_excludes_local_state_but_not_the_sources() -> None:
    ignored = _ignored()
    for must in (".venv", ".git"):
        assert must in ignored
    for source in _copied():
        assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source

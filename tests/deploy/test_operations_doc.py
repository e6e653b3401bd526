"""docs/operations.md against the code: every `run` flag and every metric, with the
defaults the parser really has and the labels the registry really uses."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase

from provisioner.cli import ENV_PREFIX, build_parser, env_name
from provisioner.observability import Metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _table(heading: str) -> list[list[str]]:
    """Rows of the first table under ``## heading``, cells stripped, header dropped."""
    section = DOC.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


def _run_parser(monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)  # defaults as documented, not as this shell has them
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def _shown(default: object) -> str:
    if default is None:
        return "none"
    if default is False:
        return "off"
    return f"`{default}`"


def test_every_run_flag_is_documented_with_its_variable_and_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    documented = {row[0].strip("`"): row for row in _table("Flags and environment variables")}
    flags = {
        action.option_strings[-1]: action
        for action in _run_parser(monkeypatch)._actions
        if action.option_strings and action.dest != "help"
    }
    assert set(flags) == set(documented), "flags missing from (or extra in) the table"
    for flag, action in flags.items():
        row = documented[flag]
        assert row[1] == f"`{env_name(flag)}`", flag
        assert row[2] == _shown(action.default), flag
        assert row[3], f"{flag}: no meaning given"


def test_every_metric_is_documented_with_its_type_and_labels() -> None:
    documented = {row[0].strip("`"): row for row in _table("Metrics")}
    exported: dict[str, tuple[str, list[str]]] = {}
    for metric in vars(Metrics()).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        (family,) = metric.describe()
        # Counters are described without `_total`; the exposition adds it.
        name = f"{family.name}_total" if family.type == "counter" else family.name
        exported[name] = (family.type, sorted(metric._labelnames))
    assert exported, "no metric found: the comparison below would prove nothing"
    assert set(exported) == set(documented), "metrics missing from (or extra in) the table"
    for name, (kind, labels) in exported.items():
        row = documented[name]
        assert row[1] == kind, name
        assert sorted(re.findall(r"`([a-z_]+)`", row[2])) == labels, name
        assert row[3], f"{name}: no meaning given"

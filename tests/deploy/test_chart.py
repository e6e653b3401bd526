"""The Helm chart (charts/heketi-provisioner): it lints, renders valid objects for the
oldest and newest Kubernetes we deploy to, grants exactly manifests/rbac.yaml, passes
every `run` flag, and matches the kustomize install where the two overlap.

helm is built from its Go module by tools/build-go-tools; without it the tests that
run helm skip (the others read values.yaml only), or fail when
HEKETI_PROVISIONER_GO_TOOLS=require (CI builds the tools first).
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import subprocess
from itertools import product
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import major_minor

from provisioner.cli import ENV_PREFIX, build_parser
from tests.go_tools import go_tool

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "heketi-provisioner"
FULL_VALUES = CHART / "ci" / "full-values.yaml"
MANIFESTS = ROOT / "manifests"
RELEASE = "hp"
NAMESPACE = "heketi-provisioner"
OLDEST = "1.25"
NEWEST = major_minor(kubernetes_validate.latest_version())
VERSIONS = sorted({OLDEST, NEWEST})
VALUE_SETS = ["default", "full"]
# prometheus-operator kinds: no schema in kubernetes-validate; checked below instead.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
# Chart defaults that differ from the controller's, on purpose, as in
# manifests/deployment.yaml: JSON logs in a pod, and a grace period inside the pod's
# terminationGracePeriodSeconds (30).
DELIBERATE = {"log-format": "json", "shutdown-grace": 25}


@pytest.fixture
def helm() -> str:
    return go_tool("helm")


def _run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    # Helm's own files (repository cache, config) in a scratch place, not $HOME.
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / "heketi-provisioner-helm-test"
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(scratch / "cache"),
        "HELM_CONFIG_HOME": str(scratch / "config"),
        "HELM_DATA_HOME": str(scratch / "data"),
    }
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, env=env)


def _values_args(values: str) -> list[str]:
    return ["-f", str(FULL_VALUES)] if values == "full" else []


def render(helm: str, *args: str, chart: Path = CHART) -> list[dict[str, Any]]:
    out = _run_helm(helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE, *args)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc is not None]


def render_error(helm: str, *args: str) -> str:
    out = _run_helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert out.returncode != 0, "rendered although it should not"
    return out.stderr


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = of_kind(docs, kind)
    return found


def _values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def _full_values() -> dict[str, Any]:
    return yaml.safe_load(FULL_VALUES.read_text())


def _camel(flag: str) -> str:
    head, *rest = flag.lstrip("-").split("-")
    return head + "".join(word.capitalize() for word in rest)


def _run_parser(monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX) or name == "POD_NAMESPACE":
            monkeypatch.delenv(name)
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {
        a.option_strings[-1]: a for a in parser._actions if a.option_strings and a.dest != "help"
    }


# -- values.yaml against the controller's flags (no helm needed) -------------------------


def test_every_run_flag_has_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    flags = {_camel(flag) for flag in _flags(_run_parser(monkeypatch))}
    assert flags, "no flag found: the comparison would prove nothing"
    config = set(_values()["config"])
    assert flags - config == set(), "run flags without a value in values.yaml config"
    assert config - flags == set(), "values.yaml config keys that are not run flags"


def test_full_values_set_every_flag_to_something_else(monkeypatch: pytest.MonkeyPatch) -> None:
    full = _full_values()["config"]
    for key, value in _values()["config"].items():
        assert full.get(key) != value, f"ci/full-values.yaml leaves config.{key} at its default"


def test_chart_defaults_are_the_controllers_but_for_two(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _values()["config"]
    for flag, action in _flags(_run_parser(monkeypatch)).items():
        chart = config[_camel(flag)]
        controller = DELIBERATE.get(flag.lstrip("-"), action.default)
        if controller is None:
            assert chart == "", flag  # left out: the controller decides
        else:
            assert chart == controller, flag


# -- helm lint and the rendered objects --------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("values", VALUE_SETS)
def test_helm_lint(helm: str, values: str, version: str) -> None:
    out = _run_helm(
        helm,
        "lint",
        str(CHART),
        "--strict",
        "--kube-version",
        f"{version}.0",
        *_values_args(values),
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("values", VALUE_SETS)
def test_rendered_objects_are_valid(helm: str, values: str, version: str) -> None:
    docs = render(helm, "--kube-version", f"{version}.0", *_values_args(values))
    assert docs
    for doc in docs:
        if doc["kind"] in CUSTOM_KINDS:
            assert doc["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        try:
            used = kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = "/".join(str(p) for p in err.path)
            pytest.fail(f"{values}: {doc['kind']} invalid for {version} at {path}: {err.message}")
        assert used == version
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "heketi-provisioner", doc["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm", doc["kind"]


def _identity(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def test_defaults_install_what_the_kustomization_installs(helm: str) -> None:
    """The same kinds as `kubectl apply -k manifests/`, less the Namespace (Helm's
    --create-namespace makes it), and nothing that needs a CRD or a Heketi URL."""
    rendered = sorted(doc["kind"] for doc in render(helm))
    kustomize = sorted(
        doc["kind"]
        for entry in yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
        for doc in yaml.safe_load_all((MANIFESTS / entry).read_text())
        if doc is not None and doc["kind"] != "Namespace"
    )
    assert rendered == kustomize


def _grants(docs: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """(ClusterRole or Role, apiGroup, resource, verb): names and namespaces left out."""
    return {
        (doc["kind"], group, resource, verb)
        for doc in docs
        if doc["kind"] in {"ClusterRole", "Role"}
        for rule in doc["rules"]
        for group, resource, verb in product(rule["apiGroups"], rule["resources"], rule["verbs"])
    }


def _manifest_docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d is not None]


@pytest.mark.parametrize("values", VALUE_SETS)
def test_rbac_rules_equal_those_of_the_manifests(helm: str, values: str) -> None:
    rendered = render(helm, *_values_args(values))
    manifests = _manifest_docs("rbac.yaml")
    assert _grants(rendered) == _grants(manifests)
    # Rule by rule too, so that a regrouping shows up here and not in review.
    for kind in ("ClusterRole", "Role"):
        assert one(rendered, kind)["rules"] == one(manifests, kind)["rules"], kind


@pytest.mark.parametrize("values", VALUE_SETS)
def test_bindings_give_the_roles_to_the_pods_service_account(helm: str, values: str) -> None:
    docs = render(helm, *_values_args(values))
    account = one(docs, "ServiceAccount")["metadata"]
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["name"]
    own_namespace = _full_values()["config"]["namespace"] if values == "full" else NAMESPACE
    for binding_kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding, role = one(docs, binding_kind), one(docs, role_kind)
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["name"], "namespace": NAMESPACE}
        ]
    # The Lease and the intent records live where --namespace points.
    assert one(docs, "Role")["metadata"]["namespace"] == own_namespace
    assert one(docs, "RoleBinding")["metadata"]["namespace"] == own_namespace


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def test_rendered_args_parse_with_the_controllers_parser(
    helm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every flag set in ci/full-values.yaml reaches the controller with its value."""
    parser = _run_parser(monkeypatch)
    args = _container(render(helm, "-f", str(FULL_VALUES)))["args"]
    parsed = parser.parse_args(args)
    config = _full_values()["config"]
    for flag, action in _flags(parser).items():
        assert getattr(parsed, action.dest) == config[_camel(flag)], flag


def test_default_args_give_the_controller_the_manifests_settings(
    helm: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = _run_parser(monkeypatch)
    chart = parser.parse_args(_container(render(helm))["args"])
    kustomize = parser.parse_args(_container(_manifest_docs("deployment.yaml"))["args"])
    differ = {k for k in vars(chart) if getattr(chart, k) != getattr(kustomize, k)}
    # :8080 and 0.0.0.0:8080 both listen on every IPv4 address.
    assert differ <= {"metrics_address"}
    assert chart.metrics_address.rsplit(":", 1)[1] == kustomize.metrics_address.rsplit(":", 1)[1]


def test_default_deployment_matches_the_manifest(helm: str) -> None:
    chart = one(render(helm), "Deployment")["spec"]
    kustomize = one(_manifest_docs("deployment.yaml"), "Deployment")["spec"]
    assert chart["replicas"] == kustomize["replicas"] == 2
    assert chart["strategy"] == kustomize["strategy"]
    pod, manifest_pod = chart["template"]["spec"], kustomize["template"]["spec"]
    for field in ("securityContext", "terminationGracePeriodSeconds", "volumes"):
        assert pod[field] == manifest_pod[field], field
    container, manifest_container = pod["containers"][0], manifest_pod["containers"][0]
    for field in ("resources", "securityContext", "volumeMounts", "env"):
        assert container[field] == manifest_container[field], field
    for probe in ("livenessProbe", "readinessProbe"):
        ours = {**container[probe], "httpGet": {**container[probe]["httpGet"], "port": 8080}}
        assert ours == manifest_container[probe], probe
    assert container["ports"] == manifest_container["ports"]


def test_metrics_port_follows_the_metrics_address(helm: str) -> None:
    docs = render(helm, "-f", str(FULL_VALUES))
    assert _container(docs)["ports"][0]["containerPort"] == 9102
    service = one(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert "config.metricsAddress must be HOST:PORT" in render_error(
        helm, "--set", "config.metricsAddress=0"
    )


def test_service_monitor_selects_the_metrics_service(helm: str) -> None:
    docs = render(helm, "-f", str(FULL_VALUES))
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert not of_kind(render(helm), "ServiceMonitor"), "must be off by default"


def test_no_leader_election_needs_a_single_replica(helm: str) -> None:
    error = render_error(helm, "--set", "config.noLeaderElection=true")
    assert "replicaCount 1" in error


# -- the Heketi Secret and the StorageClasses --------------------------------------------

URL = "http://heketi.example.com:8080"


def test_no_class_without_a_heketi_url(helm: str) -> None:
    docs = render(helm)
    assert not of_kind(docs, "StorageClass") and not of_kind(docs, "Secret")


def test_url_and_key_give_a_class_and_its_secret(helm: str) -> None:
    docs = render(helm, "--set", f"heketi.url={URL}", "--set-string", "heketi.key=s3cr=t 1")
    secret, storage_class = one(docs, "Secret"), one(docs, "StorageClass")
    assert secret["type"] == "kubernetes.io/glusterfs"
    assert base64.b64decode(secret["data"]["key"]).decode() == "s3cr=t 1"
    assert secret["metadata"]["namespace"] == NAMESPACE
    assert storage_class["provisioner"] == "gluster.org/heketi"
    assert storage_class["parameters"] == {
        "resturl": URL,
        "restuser": "admin",
        "secretNamespace": NAMESPACE,
        "secretName": secret["metadata"]["name"],
        "volumetype": "replicate:3",
        "gidMin": "40000",
        "gidMax": "50000",
    }


def test_an_existing_secret_is_named_and_not_created(helm: str) -> None:
    docs = render(
        helm,
        "--set", f"heketi.url={URL}",
        "--set", "heketi.existingSecret=my-key",
        "--set-string", "heketi.key=ignored",
    )  # fmt: skip
    assert not of_kind(docs, "Secret")
    parameters = one(docs, "StorageClass")["parameters"]
    assert (parameters["secretNamespace"], parameters["secretName"]) == (NAMESPACE, "my-key")


def test_a_class_without_a_key_is_refused(helm: str) -> None:
    assert "no Heketi key" in render_error(helm, "--set", f"heketi.url={URL}")


def test_full_values_classes(helm: str) -> None:
    classes = {
        c["metadata"]["name"]: c
        for c in of_kind(render(helm, "-f", str(FULL_VALUES)), "StorageClass")
    }
    assert set(classes) == {c["name"] for c in _full_values()["storageClasses"]}
    for storage_class in classes.values():
        assert storage_class["provisioner"] == "kubernetes.io/glusterfs"
        # StorageClass parameters are strings (gidMin: 40000 in the values is a number).
        assert all(isinstance(v, str) for v in storage_class["parameters"].values())
    default = classes["glusterfs"]
    assert (
        default["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    )
    assert default["parameters"]["gidMin"] == "40000"
    assert default["parameters"]["snapfactor"] == "10"
    other = classes["glusterfs-other-heketi"]["parameters"]
    # A class naming its own Heketi and Secret keeps them.
    assert (other["resturl"], other["secretNamespace"], other["secretName"]) == (
        "http://heketi.other.svc:8080",
        "other",
        "other-heketi-key",
    )
    wffc = classes["glusterfs-retain-wffc"]
    assert (wffc["reclaimPolicy"], wffc["volumeBindingMode"]) == ("Retain", "WaitForFirstConsumer")


@pytest.mark.parametrize(
    ("parameter", "value", "left_out"),
    [
        ("secretname", "lower-case-key", {"secretNamespace", "secretName"}),
        ("RESTUSER", "user", {"restuser"}),
        ("restuserkey", "plain", {"secretNamespace", "secretName"}),
        ("restauthenabled", "false", {"restuser", "secretNamespace", "secretName"}),
    ],
)
def test_parameters_given_by_the_class_are_not_added_again(
    helm: str, tmp_path: Path, parameter: str, value: str, left_out: set[str]
) -> None:
    """Keys ignore case in the controller; one key twice is an error there."""
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "heketi": {"url": URL, "key": "k"},
                "storageClasses": [{"name": "c", "parameters": {parameter: value}}],
            }
        )
    )
    docs = render(helm, "-f", str(values))
    parameters = one(docs, "StorageClass")["parameters"]
    lowered = [key.lower() for key in parameters]
    assert len(lowered) == len(set(lowered)), parameters
    assert parameters[parameter] == value
    assert not left_out & set(parameters)


# -- NOTES.txt, the alert rules and the dashboard in the chart ---------------------------


def _notes(helm: str, tmp_path: Path, *args: str) -> str:
    """NOTES.txt as `helm install` prints it: `helm template` does not render notes,
    so a copy of the chart gets one more template that includes them."""
    chart = tmp_path / "chart"
    subprocess.run(["cp", "-r", str(CHART), str(chart)], check=True)
    (chart / "templates" / "notes-for-test.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n"
        '  notes: {{ include (print $.Template.BasePath "/NOTES.txt") . | quote }}\n'
    )
    docs = render(helm, "--show-only", "templates/notes-for-test.yaml", *args, chart=chart)
    return str(one(docs, "ConfigMap")["data"]["notes"])


def test_notes_show_a_first_claim_that_is_valid(helm: str, tmp_path: Path) -> None:
    notes = _notes(helm, tmp_path, "--set", f"heketi.url={URL}", "--set-string", "heketi.key=k")
    claim_text = re.search(r"<<'YAML'\n(.*?)\n\s*YAML\n", notes, re.S)
    assert claim_text, notes
    claim = yaml.safe_load(claim_text.group(1))
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["storageClassName"] == "glusterfs"
    for version in VERSIONS:
        kubernetes_validate.validate(claim, version, strict=True)
    assert f"rollout status deployment/{RELEASE}-heketi-provisioner" in notes
    assert "NOT created" not in notes


def test_notes_say_which_classes_were_not_created(helm: str, tmp_path: Path) -> None:
    notes = _notes(helm, tmp_path)
    assert "NOT created, for want of a Heketi URL: StorageClass glusterfs" in notes
    assert "PersistentVolumeClaim" not in notes


def test_notes_warn_about_the_126_gate_only_where_it_applies(helm: str, tmp_path: Path) -> None:
    assert "from 1.26 on" in _notes(helm, tmp_path, "--kube-version", "1.30.0")
    assert "from 1.26 on" not in _notes(helm, tmp_path, "--kube-version", "1.25.16")


def test_prometheus_rule_holds_the_rules_of_the_plain_file(helm: str) -> None:
    rule = one(render(helm, "--set", "prometheusRule.enabled=true"), "PrometheusRule")
    plain = yaml.safe_load((MANIFESTS / "monitoring" / "alerts.yaml").read_text())
    assert rule["spec"] == {"groups": plain["groups"]}
    assert not of_kind(render(helm), "PrometheusRule"), "must be off by default"


def test_prometheus_rule_follows_the_values(helm: str) -> None:
    rule = one(render(helm, "-f", str(FULL_VALUES)), "PrometheusRule")
    (pending,) = [
        r for g in rule["spec"]["groups"] for r in g["rules"]
        if r["alert"] == "HeketiProvisionerClaimPending"
    ]  # fmt: skip
    assert pending["for"] == "30m"
    assert 'provisioner="kubernetes.io/glusterfs"' in pending["expr"]


def test_dashboard_configmap_holds_the_dashboard(helm: str) -> None:
    docs = render(helm, "-f", str(FULL_VALUES))
    configmap = one(docs, "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["namespace"] == "monitoring"
    dashboard = (CHART / "dashboards" / "heketi-provisioner.json").read_text()
    assert configmap["data"]["heketi-provisioner.json"] == dashboard.rstrip("\n")

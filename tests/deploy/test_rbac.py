"""RBAC: least privilege, no wildcards, exactly the grants the controller needs.

``GRANTS`` is written by hand from what the controller does;
tests/observability/test_rbac_from_request_log.py derives the same set from the
Kubernetes sandbox's request log while the controller runs, and compares it with
manifests/rbac.yaml.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import yaml

RBAC = Path(__file__).resolve().parents[2] / "manifests" / "rbac.yaml"
NAMESPACE = "heketi-provisioner"
CLUSTER = "cluster"
OWN_NAMESPACE = f"namespace:{NAMESPACE}"
CORE = ""


def _grants(scope: str, group: str, resources: tuple[str, ...], verbs: str) -> set[tuple]:
    return {(scope, group, r, v) for r, v in product(resources, verbs.split())}


# (scope, apiGroup, resource, verb)
GRANTS: set[tuple[str, str, str, str]] = (
    _grants(CLUSTER, CORE, ("persistentvolumeclaims",), "list watch")
    | _grants(CLUSTER, CORE, ("persistentvolumeclaims/status",), "patch")
    | _grants(CLUSTER, CORE, ("persistentvolumes",), "get list watch create patch delete")
    | _grants(CLUSTER, "storage.k8s.io", ("storageclasses",), "list watch")
    | _grants(CLUSTER, CORE, ("secrets",), "get create delete")
    | _grants(CLUSTER, CORE, ("endpoints", "services"), "get list watch create delete")
    | _grants(CLUSTER, CORE, ("endpoints",), "update")
    | _grants(CLUSTER, CORE, ("events",), "create patch")
    | _grants(OWN_NAMESPACE, "coordination.k8s.io", ("leases",), "get watch create update")
    | _grants(OWN_NAMESPACE, CORE, ("configmaps",), "get list create delete")
)


def _docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(RBAC.read_text()) if d is not None]


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in _docs() if d["kind"] == kind]


def _granted() -> set[tuple[str, str, str, str]]:
    found: set[tuple[str, str, str, str]] = set()
    for doc in _docs():
        if doc["kind"] == "ClusterRole":
            scope = CLUSTER
        elif doc["kind"] == "Role":
            scope = f"namespace:{doc['metadata']['namespace']}"
        else:
            continue
        for rule in doc["rules"]:
            for group, resource, verb in product(
                rule["apiGroups"], rule["resources"], rule["verbs"]
            ):
                found.add((scope, group, resource, verb))
    return found


def test_rbac_is_in_one_file_only(manifests_dir: Path) -> None:
    kinds = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    for path in manifests_dir.glob("*.yaml"):
        if path == RBAC or path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc is None or doc["kind"] not in kinds, path.name


def test_file_says_it_will_be_checked_against_the_request_log() -> None:
    header = RBAC.read_text().split("apiVersion:", 1)[0]
    words = " ".join(header.replace("#", " ").split())
    assert "request log" in words


def test_no_wildcards() -> None:
    for doc in _of_kind("ClusterRole") + _of_kind("Role"):
        assert "aggregationRule" not in doc
        for rule in doc["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                for value in rule.get(field, []):
                    assert "*" not in value, f"{doc['metadata']['name']}: {field} {value}"
            assert "nonResourceURLs" not in rule


def test_grants_exactly_the_table() -> None:
    granted = _granted()
    assert granted - GRANTS == set(), "granted but not needed"
    assert GRANTS - granted == set(), "needed but not granted"


@pytest.mark.parametrize("verb", ["list", "watch", "update", "patch"])
def test_secrets_are_read_by_name_only(verb: str) -> None:
    """create/delete are for the CHAP Secrets of iSCSI PVs (our own objects); nothing
    may enumerate Secrets or change one someone else wrote."""
    assert not any(g[2] == "secrets" and g[3] == verb for g in _granted())


@pytest.mark.parametrize("resource", ["leases", "configmaps"])
def test_leases_and_intent_records_only_in_the_controller_namespace(resource: str) -> None:
    """Intent records decide which Heketi volume the sweep may delete: they must live
    where tenants cannot write, and the controller must not reach ConfigMaps
    anywhere else."""
    scopes = {g[0] for g in _granted() if g[2] == resource}
    assert scopes == {OWN_NAMESPACE}


def test_no_rule_is_repeated() -> None:
    count = 0
    for doc in _of_kind("ClusterRole") + _of_kind("Role"):
        for rule in doc["rules"]:
            count += len(rule["apiGroups"]) * len(rule["resources"]) * len(rule["verbs"])
    assert count == len(_granted())


@pytest.mark.parametrize(
    ("binding_kind", "role_kind"), [("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")]
)
def test_bindings_give_the_roles_to_the_service_account(
    binding_kind: str, role_kind: str, manifest: Callable[[str, str], dict[str, Any]]
) -> None:
    (binding,) = _of_kind(binding_kind)
    (role,) = _of_kind(role_kind)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": role_kind,
        "name": role["metadata"]["name"],
    }
    account = manifest("serviceaccount.yaml", "ServiceAccount")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]
    if binding_kind == "RoleBinding":
        assert binding["metadata"]["namespace"] == role["metadata"]["namespace"] == NAMESPACE


def test_deployment_runs_as_the_bound_service_account(
    manifest: Callable[[str, str], dict[str, Any]],
) -> None:
    pod = manifest("deployment.yaml", "Deployment")["spec"]["template"]["spec"]
    assert (
        pod["serviceAccountName"]
        == manifest("serviceaccount.yaml", "ServiceAccount")["metadata"]["name"]
    )

"""Who may do what on the sandbox: access reviews (``kubectl auth can-i``), RBAC of the
stored Roles and bindings for an impersonated identity, and ``Faults.deny``.

What a hostile tenant can do: an identity impersonated into the sandbox gets what its
bindings grant and no more (another namespace's Secrets, impersonating someone else,
a cluster-scoped write are all refused), and an access review only ever answers for the
identity asking. Not emulated, so not tested: RBAC's escalation check on writes of RBAC
objects (the README says so)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from provisioner.sandbox.kube import KubeSandbox

from .conftest import KUBECTL

NS = "team"
SA = f"system:serviceaccount:{NS}:app"
AS_SA = {"Impersonate-User": SA}
REVIEWS = "/apis/authorization.k8s.io/v1"
RBAC = "/apis/rbac.authorization.k8s.io/v1"


@pytest.fixture
def team(raw) -> None:
    """Namespace ``team``; its ServiceAccount ``app`` may read ConfigMaps there, and is
    bound to a Role that does not exist."""
    raw("POST", "/api/v1/namespaces", {"metadata": {"name": NS}})
    raw("POST", "/api/v1/namespaces", {"metadata": {"name": "other"}})
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}
    raw("POST", f"{RBAC}/namespaces/{NS}/roles", {"metadata": {"name": "reader"}, "rules": [rule]})
    for name, role in (("reader", "reader"), ("broken", "missing")):
        binding = {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": NS}],
        }
        raw("POST", f"{RBAC}/namespaces/{NS}/rolebindings", binding)


def _review(raw, attributes: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    kind = "resourceAttributes" if "resource" in attributes else "nonResourceAttributes"
    body = {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "spec": {kind: attributes}}  # fmt: skip
    status, answer = raw("POST", f"{REVIEWS}/selfsubjectaccessreviews", body, header_params=headers)
    assert status == 201, answer
    return answer["status"]


def test_the_administrator_may_do_anything(raw) -> None:
    assert _review(raw, {"verb": "delete", "resource": "persistentvolumes"}) == {"allowed": True}
    assert _review(raw, {"verb": "get", "path": "/metrics"}) == {"allowed": True}


def test_a_planted_refusal_is_what_a_review_says(raw, kube: KubeSandbox) -> None:
    """How a check of the controller's RBAC (a ``doctor``) meets a missing grant on the
    sandbox: Faults.deny refuses the request and the review says no."""
    kube.faults.deny("persistentvolumes", {"delete"})
    assert _review(raw, {"verb": "delete", "resource": "persistentvolumes"}) == {"allowed": False}
    assert _review(raw, {"verb": "get", "resource": "persistentvolumes"})["allowed"] is True
    status, err = raw("DELETE", "/api/v1/persistentvolumes/x")
    assert status == 403 and err["reason"] == "Forbidden"
    kube.faults.clear()
    assert _review(raw, {"verb": "delete", "resource": "persistentvolumes"})["allowed"] is True


def test_an_identity_gets_what_its_bindings_grant(raw, team) -> None:
    allowed = _review(raw, {"verb": "list", "resource": "configmaps", "namespace": NS}, AS_SA)
    assert allowed == {
        "allowed": True,
        "reason": 'RBAC: allowed by RoleBinding "reader/team" of Role "reader" to '
        'ServiceAccount "app/team"',
    }
    elsewhere = _review(
        raw, {"verb": "list", "resource": "configmaps", "namespace": "other"}, AS_SA
    )
    assert elsewhere == {"allowed": False}
    # in its own namespace the broken binding's error is the reason of a refusal
    secrets = _review(raw, {"verb": "list", "resource": "secrets", "namespace": NS}, AS_SA)
    assert secrets == {
        "allowed": False,
        "reason": 'RBAC: role.rbac.authorization.k8s.io "missing" not found',
    }
    # every authenticated identity may review itself and read discovery
    assert _review(raw, {"verb": "create", "resource": "selfsubjectaccessreviews",
                         "group": "authorization.k8s.io"}, AS_SA)["allowed"]  # fmt: skip
    assert _review(raw, {"verb": "get", "path": "/apis"}, AS_SA)["allowed"]
    assert not _review(raw, {"verb": "get", "path": "/metrics"}, AS_SA)["allowed"]


def test_requests_are_judged_as_reviews_are(raw, team) -> None:
    status, listed = raw("GET", f"/api/v1/namespaces/{NS}/configmaps", header_params=AS_SA)
    assert status == 200 and listed["kind"] == "ConfigMapList"
    status, err = raw("GET", "/api/v1/namespaces/other/secrets", header_params=AS_SA)
    assert status == 403
    assert err["message"] == (
        f'secrets is forbidden: User "{SA}" cannot list resource "secrets" in API group "" '
        'in the namespace "other"'
    )
    assert err["details"] == {"kind": "secrets"}
    status, err = raw("DELETE", "/api/v1/persistentvolumes/pv1", header_params=AS_SA)
    assert status == 403 and "at the cluster scope" in err["message"]
    assert err["details"] == {"name": "pv1", "kind": "persistentvolumes"}
    status, err = raw("GET", "/version", header_params=AS_SA)
    assert status == 200
    status, err = raw("GET", "/metrics", header_params=AS_SA)
    assert status == 403 and err["message"] == f'forbidden: User "{SA}" cannot get path "/metrics"'


def test_a_tenant_cannot_act_as_someone_else(raw, team) -> None:
    """Impersonation needs the ``impersonate`` verb, which only the administrator has."""
    as_sa_as_admin = {**AS_SA, "Impersonate-Group": "system:masters"}
    status, answer = raw("GET", f"/api/v1/namespaces/{NS}/secrets", header_params=as_sa_as_admin)
    # the administrator may impersonate the group too: that is the administrator's choice
    assert status == 200, answer
    # a review names no other subject: it answers for whoever asks
    asked = {"verb": "list", "resource": "secrets", "namespace": "other"}
    body = {"spec": {"resourceAttributes": asked}, "status": {"allowed": True}}
    status, answer = raw("POST", f"{REVIEWS}/selfsubjectaccessreviews", body, header_params=AS_SA)
    assert status == 201 and answer["status"] == {"allowed": False}


def test_groups_without_a_user_are_refused(raw) -> None:
    status, err = raw("GET", "/api/v1/namespaces", header_params={"Impersonate-Group": "x"})
    assert status == 400 and err["reason"] == "BadRequest"
    assert "without impersonating a user name" in err["message"]


def test_rules_review_lists_the_bound_rules(raw, team) -> None:
    body = {"spec": {"namespace": NS}}
    status, answer = raw("POST", f"{REVIEWS}/selfsubjectrulesreviews", body, header_params=AS_SA)
    assert status == 201, answer
    rules = answer["status"]["resourceRules"]
    assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"]} in rules
    assert answer["status"]["evaluationError"] == (
        'role.rbac.authorization.k8s.io "missing" not found'
    )
    status, err = raw("POST", f"{REVIEWS}/selfsubjectrulesreviews", {"spec": {}})
    assert status == 400 and err["message"] == "no namespace on request"


def test_a_review_needs_exactly_one_kind_of_attributes(raw) -> None:
    status, err = raw("POST", f"{REVIEWS}/selfsubjectaccessreviews", {"spec": {}})
    assert status == 422
    # the fixture's sandbox speaks 1.30: the cause names the attribute, as 1.25 does
    assert err["details"]["causes"][0]["field"] == "spec.resourceAttributes"
    status, _ = raw("GET", f"{REVIEWS}/selfsubjectaccessreviews")
    assert status == 405


@pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl binary not found")
def test_kubectl_auth_can_i(kube: KubeSandbox, raw, team, tmp_path: Path) -> None:
    """kubectl sends its reviews in protobuf; --as impersonates."""

    def can_i(*args: str) -> tuple[int, str]:
        done = subprocess.run(
            [KUBECTL, "--kubeconfig", str(kube.kubeconfig_path), "--cache-dir",
             str(tmp_path), "auth", "can-i", *args],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        return done.returncode, done.stdout.strip()

    assert can_i("create", "persistentvolumes") == (0, "yes")
    assert can_i("list", "configmaps", "-n", NS, f"--as={SA}") == (0, "yes")
    assert can_i("delete", "configmaps", "-n", NS, f"--as={SA}") == (
        1,
        'no - RBAC: role.rbac.authorization.k8s.io "missing" not found',
    )
    assert can_i("delete", "configmaps", "-n", "other", f"--as={SA}") == (1, "no")
    code, listed = can_i("--list", "-n", NS, f"--as={SA}")
    assert code == 0 and "configmaps" in listed and "[get list]" in listed
    kube.faults.deny("persistentvolumeclaims", {"create"})
    assert can_i("create", "persistentvolumeclaims", "-n", NS) == (1, "no")

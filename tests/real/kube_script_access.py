"""Differential steps: RBAC and access reviews, as the administrator and as identities
impersonated through RBAC objects the script writes.

A ServiceAccount bound to a Role (two rules, one limited to a resource name), a binding
to a Role that does not exist (its error shows in denials' reasons), a ClusterRole
bound to a plain user; SelfSubjectAccessReviews and SelfSubjectRulesReviews answered
for each; the requests themselves allowed or refused (403 wording, resource and
non-resource); impersonation that names groups without a user. Reviews whose answer
several bootstrap bindings could give are avoided: which one a real server names
depends on the order of its binding cache.
"""

from __future__ import annotations

from typing import Any

import requests

from .kube_target import CORE, NS, Step, Target

RBAC = "/apis/rbac.authorization.k8s.io/v1"
REVIEWS = "/apis/authorization.k8s.io/v1"
SA = f"system:serviceaccount:{NS}:robot"
AS_SA = {"Impersonate-User": SA}
AS_USER = {"Impersonate-User": "kdiff-user", "Impersonate-Group": "kdiff-group"}

ROLE = {
    "metadata": {"name": "kdiff-reader"},
    "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s1"], "verbs": ["get"]},
    ],
}
BINDING = {
    "metadata": {"name": "kdiff-reader"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kdiff-reader"},
    "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": NS}],
}
BROKEN_BINDING = {
    "metadata": {"name": "kdiff-missing"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "missing"},
    "subjects": [{"kind": "ServiceAccount", "name": "robot"}],
}
CLUSTER_ROLE = {
    "metadata": {"name": "kdiff-pv-reader"},
    "rules": [{"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["get", "list"]}],
}
CLUSTER_BINDING = {
    "metadata": {"name": "kdiff-pv-reader"},
    "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "kdiff-pv-reader",
    },
    "subjects": [{"kind": "User", "name": "kdiff-user", "apiGroup": "rbac.authorization.k8s.io"}],
}


def _access(name: str, attributes: dict[str, Any], headers: dict[str, str] | None = None) -> Step:
    kind = "resourceAttributes" if "resource" in attributes else "nonResourceAttributes"
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {kind: attributes},
    }
    return (
        name,
        lambda t: t.call("POST", f"{REVIEWS}/selfsubjectaccessreviews", body, headers=headers),
    )


def _rules(name: str, spec: dict[str, Any], headers: dict[str, str] | None = None) -> Step:
    body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview", "spec": spec}
    return (
        name,
        lambda t: t.call("POST", f"{REVIEWS}/selfsubjectrulesreviews", body, headers=headers),
    )


def _as(name: str, method: str, path: str, headers: dict[str, str]) -> Step:
    def step(t: Target) -> requests.Response:
        return t.call(method, path, headers=headers)

    return (name, step)


STEPS: list[Step] = [
    ("rbac-role", lambda t: t.call("POST", f"{RBAC}/namespaces/{NS}/roles", ROLE)),
    ("rbac-binding", lambda t: t.call("POST", f"{RBAC}/namespaces/{NS}/rolebindings", BINDING)),
    (
        "rbac-broken-binding",
        lambda t: t.call("POST", f"{RBAC}/namespaces/{NS}/rolebindings", BROKEN_BINDING),
    ),
    ("rbac-cluster-role", lambda t: t.call("POST", f"{RBAC}/clusterroles", CLUSTER_ROLE)),
    (
        "rbac-cluster-binding",
        lambda t: t.call("POST", f"{RBAC}/clusterrolebindings", CLUSTER_BINDING),
    ),
    # -- the administrator (system:masters) --------------------------------------------
    _access("review-admin-create-volumes", {"verb": "create", "resource": "persistentvolumes"}),
    _access("review-admin-anything", {"verb": "*", "resource": "*", "group": "*"}),
    _access("review-admin-path", {"verb": "get", "path": "/metrics"}),
    _rules("rules-admin", {"namespace": NS}),
    # -- the ServiceAccount ------------------------------------------------------------
    _access(
        "review-sa-configmaps", {"verb": "list", "resource": "configmaps", "namespace": NS}, AS_SA
    ),
    _access(
        "review-sa-elsewhere",
        {"verb": "list", "resource": "configmaps", "namespace": "default"},
        AS_SA,
    ),
    _access(
        "review-sa-named-secret",
        {"verb": "get", "resource": "secrets", "namespace": NS, "name": "s1"},
        AS_SA,
    ),
    _access("review-sa-secrets", {"verb": "list", "resource": "secrets", "namespace": NS}, AS_SA),
    _access(
        "review-sa-reviews",
        {"verb": "create", "resource": "selfsubjectaccessreviews", "group": "authorization.k8s.io"},
        AS_SA,
    ),
    _access("review-sa-discovery", {"verb": "get", "path": "/apis"}, AS_SA),
    _access("review-sa-metrics", {"verb": "get", "path": "/metrics"}, AS_SA),
    _rules("rules-sa", {"namespace": NS}, AS_SA),
    _rules("rules-sa-no-namespace", {}, AS_SA),
    _as("sa-lists-configmaps", "GET", f"{CORE}/configmaps?labelSelector=kdiff%3Dnone", AS_SA),
    _as("sa-lists-secrets", "GET", f"{CORE}/secrets", AS_SA),
    _as("sa-gets-named-secret", "GET", f"{CORE}/secrets/s1", AS_SA),
    _as("sa-deletes-volume", "DELETE", "/api/v1/persistentvolumes/kdiff-none", AS_SA),
    _as("sa-reads-metrics", "GET", "/metrics", AS_SA),
    # -- a user with a group -----------------------------------------------------------
    _access("review-user-volumes", {"verb": "list", "resource": "persistentvolumes"}, AS_USER),
    _access(
        "review-user-claims",
        {"verb": "list", "resource": "persistentvolumeclaims", "namespace": NS},
        AS_USER,
    ),
    _as(
        "user-lists-volumes", "GET", "/api/v1/persistentvolumes?labelSelector=kdiff%3Dnone", AS_USER
    ),
    # -- what is refused ---------------------------------------------------------------
    (
        "review-both-attributes",
        lambda t: t.call(
            "POST",
            f"{REVIEWS}/selfsubjectaccessreviews",
            {
                "spec": {
                    "resourceAttributes": {"verb": "get"},
                    "nonResourceAttributes": {"verb": "get", "path": "/x"},
                }
            },
        ),
    ),
    (
        "review-no-attributes",
        lambda t: t.call("POST", f"{REVIEWS}/selfsubjectaccessreviews", {"spec": {}}),
    ),
    (
        "review-with-metadata",  # a review names nobody
        lambda t: t.call(
            "POST",
            f"{REVIEWS}/selfsubjectaccessreviews",
            {"metadata": {"name": "x"}, "spec": {"resourceAttributes": {"verb": "get"}}},
        ),
    ),
    ("review-get-not-allowed", lambda t: t.call("GET", f"{REVIEWS}/selfsubjectaccessreviews")),
    _as("impersonate-group-only", "GET", f"{CORE}/configmaps", {"Impersonate-Group": "x"}),
]

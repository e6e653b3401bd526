"""The part of kube-apiserver's bootstrap RBAC policy that every identity meets.

A real server creates some seventy ClusterRoles and fifty bindings at start; most are
bound to one system component. The sandbox stores those bound to groups that every
user, every ServiceAccount or the administrators belong to, so that an access review
(``kubectl auth can-i``, ``--list``) answers as on a real server: ``cluster-admin``
(``system:masters``), ``system:discovery``, ``system:basic-user`` and
``system:public-info-viewer`` (``system:authenticated``),
``system:service-account-issuer-discovery`` and (from 1.37)
``system:cluster-trust-bundle-discovery`` (``system:serviceaccounts``). Rules as in
plugin/pkg/auth/authorizer/rbac/bootstrappolicy of 1.25 and 1.37, the versions the
differential tier checks.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}
# authentication.k8s.io SelfSubjectReview joined system:basic-user when it went GA.
SELF_SUBJECT_REVIEW_SINCE = (1, 28)
# The issuer-discovery paths gained their trailing-slash forms after 1.25.
ISSUER_SLASHES_SINCE = (1, 26)
# ClusterTrustBundle went GA (on by default) in 1.37: ServiceAccounts may read them.
TRUST_BUNDLES_SINCE = (1, 37)

_DISCOVERY_URLS = [
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/openapi",
    "/openapi/*",
    "/readyz",
    "/version",
    "/version/",
]
_PUBLIC_URLS = ["/healthz", "/livez", "/readyz", "/version", "/version/"]


def _role(name: str, rules: list[Obj]) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": dict(_LABELS), "annotations": dict(_ANNOTATIONS)},
        "rules": rules,
    }


def _binding(name: str, *groups: str) -> Obj:
    return {
        "apiVersion": f"{GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": dict(_LABELS), "annotations": dict(_ANNOTATIONS)},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
        "subjects": [{"kind": "Group", "apiGroup": GROUP, "name": g} for g in groups],
    }


def cluster_roles(release: tuple[int, int]) -> list[Obj]:
    basic = [
        {
            "verbs": ["create"],
            "apiGroups": ["authorization.k8s.io"],
            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
        }
    ]
    if release >= SELF_SUBJECT_REVIEW_SINCE:
        basic.append(
            {
                "verbs": ["create"],
                "apiGroups": ["authentication.k8s.io"],
                "resources": ["selfsubjectreviews"],
            }
        )
    issuer = ["/.well-known/openid-configuration", "/openid/v1/jwks"]
    if release >= ISSUER_SLASHES_SINCE:
        issuer = [issuer[0], issuer[0] + "/", issuer[1], issuer[1] + "/"]
    roles = [
        _role(
            "cluster-admin",
            [
                {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]},
                {"verbs": ["*"], "nonResourceURLs": ["*"]},
            ],
        ),
        _role("system:discovery", [{"verbs": ["get"], "nonResourceURLs": _DISCOVERY_URLS}]),
        _role("system:basic-user", basic),
        _role("system:public-info-viewer", [{"verbs": ["get"], "nonResourceURLs": _PUBLIC_URLS}]),
        _role(
            "system:service-account-issuer-discovery",
            [{"verbs": ["get"], "nonResourceURLs": issuer}],
        ),
    ]
    if release >= TRUST_BUNDLES_SINCE:
        rule = {
            "verbs": ["get", "list", "watch"],
            "apiGroups": ["certificates.k8s.io"],
            "resources": ["clustertrustbundles"],
        }
        roles.append(_role("system:cluster-trust-bundle-discovery", [rule]))
    return roles


def cluster_role_bindings(release: tuple[int, int]) -> list[Obj]:
    trust = (
        [_binding("system:cluster-trust-bundle-discovery", "system:serviceaccounts")]
        if release >= TRUST_BUNDLES_SINCE
        else []
    )
    return [
        _binding("cluster-admin", "system:masters"),
        _binding("system:discovery", "system:authenticated"),
        _binding("system:basic-user", "system:authenticated"),
        _binding("system:public-info-viewer", "system:authenticated", "system:unauthenticated"),
        _binding("system:service-account-issuer-discovery", "system:serviceaccounts"),
        *trust,
    ]

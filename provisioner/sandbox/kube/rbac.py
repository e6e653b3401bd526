"""RBAC as kube-apiserver's authorizer evaluates it, over the Roles, ClusterRoles and
bindings stored in the sandbox.

Why it exists: ``kubectl auth can-i`` (and a ``doctor`` that checks a ServiceAccount's
grants) must get the answers a real server gives for the same RBAC objects, and a
request made as another identity (impersonation) must be refused as a real server
refuses it. The rules follow plugin/pkg/auth/authorizer/rbac (rule matching, the
"allowed by" reason, errors for missing roles collected into a denial's reason) and
the ``system:masters`` group that the privileged-groups authorizer lets through
before RBAC is asked. Not emulated: the Node authorizer, ClusterRole aggregation
(``aggregationRule``: a ClusterRole's stored ``rules`` are what counts) and
escalation checks on writes of RBAC objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .store import Store

Obj = dict[str, Any]
MASTERS = "system:masters"
# From here on the authorizer chain names the authorizer in a denial's reason ("rbac:
# RBAC: ..."); 1.25 gives RBAC's reason alone. Checked at 1.25 and 1.37 only.
NAMED_REASONS_SINCE = (1, 34)
AUTHENTICATED = "system:authenticated"
SA_PREFIX = "system:serviceaccount:"


@dataclass(frozen=True)
class User:
    """Who a request runs as (the apiserver's user.Info)."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def privileged(self) -> bool:
        return MASTERS in self.groups


@dataclass(frozen=True)
class Attributes:
    """What is asked (authorizer.AttributesRecord): a resource request, or a path."""

    user: User
    verb: str
    resource_request: bool = True
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


@dataclass
class Rules:
    """A subject's rules in a namespace, and the errors met finding them."""

    rules: list[Obj] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _matches(values: Any, wanted: str) -> bool:
    listed = values if isinstance(values, list) else []
    return "*" in listed or wanted in listed


def _resource_matches(rule: Obj, combined: str, subresource: str) -> bool:
    for listed in rule.get("resources") or []:
        if listed in ("*", combined):
            return True
        if subresource and listed == f"*/{subresource}":
            return True
    return False


def _url_matches(rule: Obj, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or []:
        if url in ("*", path) or (url.endswith("*") and path.startswith(url.rstrip("*"))):
            return True
    return False


def rule_allows(attrs: Attributes, rule: Obj) -> bool:
    if not _matches(rule.get("verbs"), attrs.verb):
        return False
    if not attrs.resource_request:
        return _url_matches(rule, attrs.path)
    combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    names = rule.get("resourceNames") or []
    return (
        _matches(rule.get("apiGroups"), attrs.group)
        and _resource_matches(rule, combined, attrs.subresource)
        and (not names or attrs.name in names)
    )


def _describe(subject: Obj, namespace: str) -> str:
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or namespace}"'
    return f'{kind} "{name}"'


def _applies(user: User, subject: Obj, namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(user.name == name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        sa_namespace = subject.get("namespace") or namespace
        return bool(sa_namespace) and user.name == f"{SA_PREFIX}{sa_namespace}:{name}"
    return False


def aggregate(errors: list[str]) -> str:
    """Go's utilerrors aggregate: one message as is, several deduplicated in brackets."""
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


class Rbac:
    """Reads the stored RBAC objects on every question: the sandbox's RBAC objects
    are few, and a fresh read means a binding applied a moment ago already counts."""

    def __init__(self, store: Store, release: tuple[int, int] = (1, 25)) -> None:
        self._store = store
        self._release = release

    def _role_rules(self, ref: Any, namespace: str) -> tuple[list[Obj], str | None]:
        kind = ref.get("kind") if isinstance(ref, dict) else None
        name = ref.get("name", "") if isinstance(ref, dict) else ""
        if kind == "Role":
            role = self._store.get("roles", namespace, name)
            missing = f'role.rbac.authorization.k8s.io "{name}" not found'
        elif kind == "ClusterRole":
            role = self._store.get("clusterroles", "", name)
            missing = f'clusterrole.rbac.authorization.k8s.io "{name}" not found'
        else:
            return [], f'unsupported role reference kind: "{kind or ""}"'
        if role is None:
            return [], missing
        return [r for r in role.get("rules") or [] if isinstance(r, dict)], None

    def visit(self, user: User, namespace: str) -> Iterator[tuple[str, Obj | None, str | None]]:
        """(source, rule, error) for every rule that applies to ``user`` in
        ``namespace`` (cluster-wide bindings first), as the rule resolver visits them."""
        sources: list[tuple[str, str]] = [("clusterrolebindings", "")]
        if namespace:
            sources.append(("rolebindings", namespace))
        for storage, ns in sources:
            for entry in self._store.snapshot(storage, ns or None)[1]:
                binding = entry.obj
                subjects = [s for s in binding.get("subjects") or [] if isinstance(s, dict)]
                subject = next((s for s in subjects if _applies(user, s, ns)), None)
                if subject is None:
                    continue
                rules, error = self._role_rules(binding.get("roleRef"), ns)
                if error is not None:
                    yield "", None, error
                    continue
                name = binding["metadata"]["name"]
                ref = binding.get("roleRef") or {}
                kind = "RoleBinding" if ns else "ClusterRoleBinding"
                label = f"{name}/{ns}" if ns else name
                source = (
                    f'{kind} "{label}" of {ref.get("kind")} "{ref.get("name")}" '
                    f"to {_describe(subject, ns)}"
                )
                for rule in rules:
                    yield source, rule, None

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason) in the real authorizer chain's words: system:masters is
        allowed with no reason; RBAC says which binding allowed, or on a denial only
        the errors it met (a missing role)."""
        if attrs.user.privileged:
            return True, ""
        errors = []
        for source, rule, error in self.visit(attrs.user, attrs.namespace):
            if rule is not None and rule_allows(attrs, rule):
                return True, f"RBAC: allowed by {source}"
            if error is not None:
                errors.append(error)
        if not errors:
            return False, ""
        named = "rbac: " if self._release >= NAMED_REASONS_SINCE else ""
        return False, f"{named}RBAC: {aggregate(errors)}"

    def rules_for(self, user: User, namespace: str) -> Rules:
        found = Rules()
        for _, rule, error in self.visit(user, namespace):
            if rule is not None:
                found.rules.append(rule)
            if error is not None:
                found.errors.append(error)
        return found

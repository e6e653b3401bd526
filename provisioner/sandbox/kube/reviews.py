"""Access reviews (authorization.k8s.io/v1): what the asking identity may do.

``SelfSubjectAccessReview`` answers one question with the authorizer that judges
requests (``access.py``: a planted ``Faults.deny``, ``system:masters``, then the stored
RBAC objects), so ``kubectl auth can-i`` and a permission check before startup see what
a request would meet. ``SelfSubjectRulesReview`` (``kubectl auth can-i --list``) lists
the rules of the stored RBAC objects that apply; a planted refusal has no rule form
and does not show there. Nothing is stored: each review is answered and forgotten.
"""

from __future__ import annotations

import json
from typing import Any

from .access import Access
from .rbac import Attributes, User, aggregate
from .resources import ResourceType
from .status import ApiError, bad_request

Obj = dict[str, Any]
GROUP = "authorization.k8s.io"
# 1.37 shapes, checked at 1.25 and 1.37 only (the release between is a guess): the
# union check of an access review's attributes reports on "spec" (1.25 names the
# attribute), and the answer's metadata has no creationTimestamp: null.
UNION_ON_SPEC_SINCE = (1, 34)
_EXACTLY_ONE = "exactly one of nonResourceAttributes or resourceAttributes must be specified"


def _go_value(value: Obj | None, release: tuple[int, int]) -> str:
    """How a field error prints NonResourceAttributes (or nil) at this release."""
    if value is None:
        return '"null"' if release < UNION_ON_SPEC_SINCE else "null"
    if release < UNION_ON_SPEC_SINCE:
        path, verb = json.dumps(value.get("path", "")), json.dumps(value.get("verb", ""))
        return f"authorization.NonResourceAttributes{{Path:{path}, Verb:{verb}}}"
    shown = {k.title(): value[k] for k in ("path", "verb") if value.get(k)}
    return json.dumps(shown, separators=(",", ":"))


def _invalid(field: str, value: str, detail: str) -> ApiError:
    message = f"Invalid value: {value}: {detail}"
    return ApiError(
        422,
        f'.{GROUP} "" is invalid: {field}: {message}',
        details={
            "group": GROUP,
            "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}],
        },
    )


def _spec(body: Obj) -> Obj:
    spec = body.get("spec")
    return spec if isinstance(spec, dict) else {}


def _attributes(user: User, spec: Obj, release: tuple[int, int]) -> Attributes:
    resource, other = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if isinstance(resource, dict) == isinstance(other, dict):
        both = isinstance(resource, dict)
        value = _go_value(other if both else None, release)
        if release >= UNION_ON_SPEC_SINCE:
            raise _invalid("spec", value, _EXACTLY_ONE)
        if both:
            detail = "cannot be specified in combination with resourceAttributes"
            raise _invalid("spec.nonResourceAttributes", value, detail)
        raise _invalid("spec.resourceAttributes", value, _EXACTLY_ONE)
    if isinstance(other, dict):
        return Attributes(user, str(other.get("verb", "")), False, path=str(other.get("path", "")))
    assert isinstance(resource, dict)
    text = {k: str(resource.get(k) or "") for k in ("verb", "group", "resource")}
    return Attributes(
        user,
        text["verb"],
        group=text["group"],
        resource=text["resource"],
        subresource=str(resource.get("subresource") or ""),
        namespace=str(resource.get("namespace") or ""),
        name=str(resource.get("name") or ""),
    )


def _rules(rules: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """A PolicyRule becomes a ResourceRule and/or a NonResourceRule, as RBAC's
    RulesFor splits them (empty lists left out, as the JSON omits them)."""
    resource_rules, url_rules = [], []
    for rule in rules:
        verbs = list(rule.get("verbs") or [])
        if rule.get("resources"):
            entry: Obj = {"verbs": verbs}
            for key in ("apiGroups", "resources", "resourceNames"):
                if rule.get(key):
                    entry[key] = list(rule[key])
            resource_rules.append(entry)
        if rule.get("nonResourceURLs"):
            url_rules.append({"verbs": verbs, "nonResourceURLs": list(rule["nonResourceURLs"])})
    return resource_rules, url_rules


_META_ORDER = (
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers",
)  # fmt: skip


def _empty_metadata(meta: Obj) -> None:
    """An access review names nobody: its metadata must be empty (a null
    creationTimestamp, as clients send it, counts as empty). The value is shown as
    1.37 shows it (1.25 prints Go's %#v of the whole ObjectMeta)."""
    given = {k: meta[k] for k in _META_ORDER if meta.get(k) not in (None, "", 0, [], {})}
    if given:
        raise _invalid("metadata", json.dumps(given, separators=(",", ":")), "must be empty")


def answer(
    rt: ResourceType, body: Obj, user: User, access: Access, release: tuple[int, int]
) -> Obj:
    """The created review: the request as sent, with its status filled in."""
    meta = dict(body.get("metadata") or {})
    if rt.plural == "selfsubjectaccessreviews":
        _empty_metadata(meta)
    if release < UNION_ON_SPEC_SINCE:
        meta["creationTimestamp"] = None
    head = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
    if rt.plural == "selfsubjectrulesreviews":
        namespace = str(_spec(body).get("namespace") or "")
        if not namespace:
            raise bad_request("no namespace on request")
        found = access.rbac.rules_for(user, namespace)
        resource_rules, url_rules = _rules(found.rules)
        status: Obj = {
            "resourceRules": resource_rules,
            "nonResourceRules": url_rules,
            "incomplete": False,
        }
        if found.errors:
            status["evaluationError"] = aggregate(found.errors)
        return {**head, "spec": {}, "status": status}
    spec = _spec(body)
    allowed, reason = access.decide(_attributes(user, spec, release))
    status = {"allowed": allowed, **({"reason": reason} if reason else {})}
    return {**head, "spec": spec, "status": status}

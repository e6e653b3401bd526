"""The resource table: every kind the sandbox serves and how the API presents it.

Discovery, routing, field selectors and the store all read this one table, so a
resource is added in one place and behaves consistently everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
FieldGetter = Callable[[Obj], str]

ALL_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)
WRITE_VERBS: frozenset[str] = frozenset({"create", "update", "patch", "delete", "deletecollection"})


def _path(*keys: str) -> FieldGetter:
    def get(obj: Obj) -> str:
        cur: Any = obj
        for key in keys:
            if not isinstance(cur, dict):
                return ""
            cur = cur.get(key)
        return "" if cur is None else str(cur)

    return get


@dataclass(frozen=True)
class ResourceType:
    """One served resource; ``group`` is "" for the core (legacy) API."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    # Field selectors beyond metadata.name / metadata.namespace, which all support.
    fields: dict[str, FieldGetter] = field(default_factory=dict)
    # The real registry upserts on PUT for a few kinds (endpoints, services, events, leases).
    create_on_update: bool = False
    # Where objects live: resources that share storage (events in two groups) name the owner.
    storage: str = ""
    categories: tuple[str, ...] = ()
    # Access reviews: answered per request, never stored (only "create").
    review: bool = False

    @property
    def verbs(self) -> tuple[str, ...]:
        return ("create",) if self.review else ALL_VERBS

    @property
    def returns_deleted(self) -> bool:
        """The registry's ReturnDeletedObject: DELETE answers the deleted object; for
        the other kinds it answers a Status naming it (name, group, kind, uid)."""
        return (self.group, self.plural) in _RETURNS_DELETED

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> str:
        return self.storage or self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def field_value(self, obj: Obj, name: str) -> str | None:
        """Value of a selectable field, or None when the field is not selectable."""
        meta = obj.get("metadata") or {}
        if name == "metadata.name":
            return str(meta.get("name", ""))
        if name == "metadata.namespace":
            return str(meta.get("namespace", ""))
        getter = self.fields.get(name)
        return None if getter is None else getter(obj)


_RETURNS_DELETED = frozenset(
    {
        ("", "namespaces"),
        ("", "persistentvolumeclaims"),
        ("", "persistentvolumes"),
        ("", "pods"),
        ("", "serviceaccounts"),
        ("", "services"),
        ("storage.k8s.io", "storageclasses"),
    }
)

_EVENT_FIELDS: dict[str, FieldGetter] = {
    "involvedObject.kind": _path("involvedObject", "kind"),
    "involvedObject.name": _path("involvedObject", "name"),
    "involvedObject.namespace": _path("involvedObject", "namespace"),
    "involvedObject.uid": _path("involvedObject", "uid"),
    "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
    "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
    "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
    "reason": _path("reason"),
    "reportingComponent": _path("reportingComponent"),
    "source": _path("source", "component"),
    "type": _path("type"),
}
# events.k8s.io/v1 selects on the same stored fields under its own names.
_EVENTS_V1_FIELDS: dict[str, FieldGetter] = {
    **_EVENT_FIELDS,
    "regarding.kind": _path("involvedObject", "kind"),
    "regarding.name": _path("involvedObject", "name"),
    "regarding.namespace": _path("involvedObject", "namespace"),
    "regarding.uid": _path("involvedObject", "uid"),
    "reportingController": _path("reportingComponent"),
}

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        False,
        ("ns",),
        ("status",),
        {"status.phase": _path("status", "phase")},
    ),
    ResourceType(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        True,
        ("pvc",),
        ("status",),
        {"spec.volumeName": _path("spec", "volumeName"), "status.phase": _path("status", "phase")},
    ),
    ResourceType(
        "",
        "v1",
        "persistentvolumes",
        "persistentvolume",
        "PersistentVolume",
        False,
        ("pv",),
        ("status",),
        {
            "status.phase": _path("status", "phase"),
            "spec.storageClassName": _path("spec", "storageClassName"),
        },
    ),
    ResourceType("", "v1", "secrets", "secret", "Secret", True, (), (), {"type": _path("type")}),
    ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
    ResourceType("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",)),
    ResourceType(
        "", "v1", "endpoints", "endpoints", "Endpoints", True, ("ep",), create_on_update=True
    ),
    ResourceType(
        "",
        "v1",
        "services",
        "service",
        "Service",
        True,
        ("svc",),
        ("status",),
        create_on_update=True,
        categories=("all",),
    ),
    ResourceType(
        "",
        "v1",
        "events",
        "event",
        "Event",
        True,
        ("ev",),
        (),
        _EVENT_FIELDS,
        create_on_update=True,
    ),
    ResourceType(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        True,
        ("po",),
        ("status",),
        {
            "spec.nodeName": _path("spec", "nodeName"),
            "status.phase": _path("status", "phase"),
        },
        categories=("all",),
    ),
    ResourceType("", "v1", "nodes", "node", "Node", False, ("no",), ("status",)),
    ResourceType(
        "storage.k8s.io",
        "v1",
        "storageclasses",
        "storageclass",
        "StorageClass",
        False,
        ("sc",),
    ),
    ResourceType(
        "coordination.k8s.io", "v1", "leases", "lease", "Lease", True, create_on_update=True
    ),
    # Stored only (no controller acts on them): so that `kubectl apply -k manifests/`
    # and the Helm chart work against the sandbox; Helm's --wait lists a Deployment's
    # ReplicaSets (none: no deployment controller, so the Deployment never gets ready).
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        True,
        ("deploy",),
        ("status",),
        categories=("all",),
    ),
    ResourceType(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        True,
        ("rs",),
        ("status",),
        categories=("all",),
    ),
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", True),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding", True
    ),
    ResourceType(
        "rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole", False
    ),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        False,
    ),
    # Access reviews, answered from the stored RBAC objects (rbac.py, reviews.py).
    *(
        ResourceType(
            "authorization.k8s.io", "v1", plural, plural[:-1], kind, namespaced, review=True
        )
        for plural, kind, namespaced in (
            ("selfsubjectaccessreviews", "SelfSubjectAccessReview", False),
            ("selfsubjectrulesreviews", "SelfSubjectRulesReview", False),
        )
    ),
    ResourceType(
        "events.k8s.io",
        "v1",
        "events",
        "event",
        "Event",
        True,
        ("ev",),
        (),
        _EVENTS_V1_FIELDS,
        create_on_update=True,
        storage="events",
    ),
)

_BY_GROUP: dict[tuple[str, str, str], ResourceType] = {
    (r.group, r.version, r.plural): r for r in RESOURCES
}
_BY_PLURAL: dict[str, ResourceType] = {}
for _r in RESOURCES:
    _BY_PLURAL.setdefault(_r.plural, _r)  # the core group wins for "events"


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    return _BY_GROUP.get((group, version, plural))


def by_plural(plural: str) -> ResourceType:
    """Resolve the plural names Python-side callers use; KeyError names the unknown one."""
    try:
        return _BY_PLURAL[plural]
    except KeyError:
        raise KeyError(f"unknown resource {plural!r}") from None


def group_versions() -> dict[str, list[str]]:
    """Group name → versions, in table order (core group under "")."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


def resources_in(group: str, version: str) -> list[ResourceType]:
    return [r for r in RESOURCES if r.group == group and r.version == version]

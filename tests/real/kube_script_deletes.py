"""Differential steps: DeleteOptions bodies and what a DELETE answers, propagation
through owner references, dry runs, Services and StorageClasses.

Bodies as clients send them: JSON with and without TypeMeta (kubectl, Helm's resource
deletes), YAML, protobuf (Helm's release Secret, a typed client), none at all (the
query carries the options); and bodies a server refuses (not JSON, cut short, the
wrong JSON type, another kind, an unknown policy, a bad dryRun, an unknown media type,
bytes that are not protobuf). Each refused DELETE aims at an object that must still
be there afterwards.
"""

from __future__ import annotations

from typing import Any

import requests

from .kube_target import (
    CORE,
    MERGE,
    PROTOBUF,
    Step,
    Target,
    cm,
    pb_field,
    protobuf_body,
)

CMS = f"{CORE}/configmaps"
CLASSES = "/apis/storage.k8s.io/v1/storageclasses"
DRY = "dryRun=All"
# Helm's release-Secret delete: protobuf DeleteOptions with nothing set.
HELM_DELETE = b'k8s\x00\n\x13\n\x02v1\x12\rDeleteOptions\x12\x00\x1a\x00"\x00'
PV = {
    "apiVersion": "v1",
    "kind": "PersistentVolume",
    "metadata": {"name": "kdiff-dry"},
    "spec": {
        "capacity": {"storage": "1Gi"},
        "accessModes": ["ReadWriteOnce"],
        "glusterfs": {"endpoints": "glusterfs-dynamic-kdiff", "path": "vol_dry"},
    },
}


def _made(t: Target, name: str, **extra: Any) -> None:
    """A ConfigMap for a later step; its uid is kept (owner references name it)."""
    r = t.call("POST", CMS, cm(name, metadata={"name": name, **extra}))
    assert r.status_code == 201, r.text
    t.ctx[f"uid_{name}"] = r.json()["metadata"]["uid"]


def _delete(name: str, body: Any, ctype: str = "application/json") -> Step:
    def step(t: Target) -> requests.Response:
        _made(t, name)
        return t.call("DELETE", f"{CMS}/{name}", body, ctype)

    return (f"delete-body-{name}", step)


def _refused(suffix: str, body: Any, ctype: str = "application/json") -> Step:
    return (f"delete-refused-{suffix}", lambda t: t.call("DELETE", f"{CMS}/keep", body, ctype))


def _owned(t: Target, owner: str, dependent: str, *, block: bool = False) -> None:
    _made(t, owner)
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": owner,
        "uid": t.ctx[f"uid_{owner}"],
        **({"blockOwnerDeletion": True} if block else {}),
    }
    _made(t, dependent, ownerReferences=[ref])


def _gone(name: str) -> Step:
    def step(t: Target) -> requests.Response:
        t.wait(f"{name} gone", lambda: t.call("GET", f"{CMS}/{name}").status_code == 404)
        return t.call("GET", f"{CMS}/{name}")

    return (f"gone-{name}", step)


def _cascade(owner: str, dependent: str, policy: str, *, block: bool = False) -> Step:
    def step(t: Target) -> requests.Response:
        _owned(t, owner, dependent, block=block)
        return t.call("DELETE", f"{CMS}/{owner}", {"propagationPolicy": policy})

    return (f"delete-{policy.lower()}-{owner}", step)


def _orphaned(t: Target) -> requests.Response:
    def freed() -> bool:
        refs = t.call("GET", f"{CMS}/orphan-dep").json()["metadata"].get("ownerReferences")
        return not refs

    t.wait("orphan-dep freed", freed)
    return t.call("GET", f"{CMS}/orphan-dep")


def _labelled(t: Target, *names: str) -> None:
    for name in names:
        labels = {"batch": "kdiff-collection"}
        assert t.call("POST", CMS, cm(name, metadata={"name": name, "labels": labels})).ok


def _collection(body: Any, ctype: str, *names: str, query: str = "") -> Step:
    def step(t: Target) -> requests.Response:
        _labelled(t, *names)
        path = f"{CMS}?labelSelector=batch%3Dkdiff-collection{query}"
        return t.call("DELETE", path, body, ctype)

    return (f"delete-collection-{names[0]}", step)


def _policy_protobuf() -> bytes:
    """DeleteOptions{propagationPolicy: Background, gracePeriodSeconds: 0} in protobuf."""
    raw = b"\x08\x00" + pb_field(4, b"Background")
    return protobuf_body("v1", "DeleteOptions", raw)


SERVICE = {"metadata": {"name": "kdiff-svc"}, "spec": {"ports": [{"port": 80}]}}
CLASS = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "kdiff-immutable"},
    "provisioner": "example.com/kdiff",
    "parameters": {"a": "1"},
}


def _service_update(t: Target) -> requests.Response:
    """A PUT that leaves the allocated cluster IP out keeps it."""
    current = t.call("GET", f"{CORE}/services/kdiff-svc").json()
    body = {
        "metadata": {
            "name": "kdiff-svc",
            "resourceVersion": current["metadata"]["resourceVersion"],
        },
        "spec": {"ports": [{"port": 81}], "selector": {"app": "kdiff"}},
    }
    return t.call("PUT", f"{CORE}/services/kdiff-svc", body)


STEPS: list[Step] = [
    ("keep-target", lambda t: t.call("POST", CMS, cm("keep"))),
    # -- bodies accepted -----------------------------------------------------------
    _delete("plain", {"propagationPolicy": "Background"}),
    _delete("typed", {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0}),
    _delete("meta", {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}),
    _delete("other-group", {"kind": "DeleteOptions", "apiVersion": "apps/v1"}),
    _delete("unknown-field", {"bogus": 1}),
    _delete("yaml", b"propagationPolicy: Background\n", "application/yaml"),
    _delete("no-media-type", b"{}", ""),
    _delete("protobuf", HELM_DELETE, PROTOBUF),
    _delete("protobuf-policy", _policy_protobuf(), PROTOBUF),
    (
        "delete-protobuf-secret",  # what `helm uninstall` does last
        lambda t: t.call("DELETE", f"{CORE}/secrets/heketi", HELM_DELETE, PROTOBUF),
    ),
    (
        "delete-query",
        lambda t: (
            _made(t, "query"),
            t.call("DELETE", f"{CMS}/query?propagationPolicy=Background&gracePeriodSeconds=0"),
        )[1],
    ),
    # -- bodies refused ------------------------------------------------------------
    _refused("not-json", b"not json"),
    _refused("cut-short", b'{"propagationPolicy":'),
    _refused("array", b"[]"),
    _refused("wrong-type", {"gracePeriodSeconds": "x"}),
    _refused("other-kind", {"kind": "ConfigMap", "apiVersion": "v1"}),
    _refused("status-kind", {"kind": "Status", "apiVersion": "v1"}),
    _refused("unknown-policy", {"propagationPolicy": "Sideways"}),
    _refused("both-policies", {"propagationPolicy": "Orphan", "orphanDependents": False}),
    _refused("bad-dry-run", {"dryRun": ["Nope"]}),
    _refused("media-type", b"{}", "text/plain"),
    _refused("not-protobuf", b"garbage", PROTOBUF),
    (
        "delete-refused-query-policy",
        lambda t: t.call("DELETE", f"{CMS}/keep?propagationPolicy=Sideways"),
    ),
    ("delete-refused-query-grace", lambda t: t.call("DELETE", f"{CMS}/keep?gracePeriodSeconds=x")),
    ("keep-still-there", lambda t: t.call("GET", f"{CMS}/keep")),
    # -- propagation ---------------------------------------------------------------
    _cascade("fg", "fg-dep", "Foreground", block=True),
    _gone("fg"),
    _gone("fg-dep"),
    _cascade("orphan", "orphan-dep", "Orphan"),
    _gone("orphan"),
    ("orphan-freed", _orphaned),
    _cascade("bg", "bg-dep", "Background"),
    _gone("bg-dep"),
    (
        "delete-old-cascade",  # orphanDependents=false on an object kept by a finalizer: 202
        lambda t: (
            _made(t, "held", finalizers=["kdiff/hold"]),
            t.call("DELETE", f"{CMS}/held", {"orphanDependents": False}),
        )[1],
    ),
    (
        "release-held",
        lambda t: t.call("PATCH", f"{CMS}/held", {"metadata": {"finalizers": None}}, MERGE),
    ),
    _gone("held"),
    # -- delete-collection ---------------------------------------------------------
    _collection({"propagationPolicy": "Background"}, "application/json", "col-a", "col-b"),
    _collection(HELM_DELETE, PROTOBUF, "col-c"),
    _collection(None, "application/json", "col-d", query=f"&{DRY}"),
    _collection(b"nope", "application/json", "col-e"),
    # -- dry runs ------------------------------------------------------------------
    ("dry-create", lambda t: t.call("POST", f"{CMS}?{DRY}", cm("dry", data={"a": "b"}))),
    (
        "dry-create-generated",
        lambda t: t.call("POST", f"{CMS}?{DRY}", {"metadata": {"generateName": "dry-"}}),
    ),
    ("dry-create-volume", lambda t: t.call("POST", f"/api/v1/persistentvolumes?{DRY}", PV)),
    ("dry-create-exists", lambda t: t.call("POST", f"{CMS}?{DRY}", cm("keep"))),
    ("dry-create-invalid", lambda t: t.call("POST", f"{CMS}?{DRY}", cm("Bad_Dry"))),
    ("dry-create-bad-value", lambda t: t.call("POST", f"{CMS}?dryRun=Nope", cm("dry"))),
    ("dry-gone", lambda t: t.call("GET", f"{CMS}/dry")),
    (
        "dry-update",
        lambda t: t.call("PUT", f"{CMS}/keep?{DRY}", cm("keep", data={"x": "y"})),
    ),
    ("dry-update-bad-value", lambda t: t.call("PUT", f"{CMS}/keep?dryRun=x", cm("keep"))),
    (
        "dry-patch",
        lambda t: t.call("PATCH", f"{CMS}/keep?{DRY}", {"data": {"p": "q"}}, MERGE),
    ),
    ("dry-patch-bad-value", lambda t: t.call("PATCH", f"{CMS}/keep?dryRun=x", {}, MERGE)),
    ("dry-delete", lambda t: t.call("DELETE", f"{CMS}/keep?{DRY}")),
    ("dry-delete-body", lambda t: t.call("DELETE", f"{CMS}/keep", {"dryRun": ["All"]})),
    ("dry-left-alone", lambda t: t.call("GET", f"{CMS}/keep")),
    # -- what DELETE answers: the object (Services, StorageClasses) or a Status ----
    ("create-service", lambda t: t.call("POST", f"{CORE}/services", SERVICE)),
    ("update-service", _service_update),
    ("delete-service", lambda t: t.call("DELETE", f"{CORE}/services/kdiff-svc")),
    ("create-immutable-class", lambda t: t.call("POST", CLASSES, CLASS)),
    (
        "class-parameters-immutable",
        lambda t: t.call("PATCH", f"{CLASSES}/kdiff-immutable", {"parameters": {"a": "2"}}, MERGE),
    ),
    (
        "class-binding-mode-immutable",
        lambda t: t.call(
            "PATCH",
            f"{CLASSES}/kdiff-immutable",
            {"volumeBindingMode": "WaitForFirstConsumer"},
            MERGE,
        ),
    ),
    ("delete-class", lambda t: t.call("DELETE", f"{CLASSES}/kdiff-immutable")),
    ("delete-keep", lambda t: t.call("DELETE", f"{CMS}/keep")),
]

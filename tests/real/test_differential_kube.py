"""Differential fidelity: the Kubernetes API sandbox against the real kube-apiserver
1.25 and 1.37 (with kube-controller-manager, whose PV binder binds the static volume).

One scripted sequence of requests runs against a fresh sandbox and the real peer, at
1.25.16 and at 1.37.2 (the sandbox reporting the same version): create/get/update/
patch (merge, strategic, JSON patch)/delete, 409 AlreadyExists and Conflict, 404
and 405 shapes, 422 Invalid with its ``details.causes``, field validation
(Strict/Warn), finalizers (delete →
deletionTimestamp, removal → gone), protobuf bodies, a watch replayed from the start
of the script (event types and order), a static PV + claim bound by the binder and
released, events read through both APIs; then DeleteOptions bodies, propagation, dry
runs, Services and StorageClasses (kube_script_deletes.py) and RBAC through
impersonation with access reviews (kube_script_access.py).

Not compared: 410 Gone. A 1.37 server answers a watch or a continued list from its
watch cache even after etcd is compacted (tried: a watch from resourceVersion 1 and from
before a compaction replay every event); it says 410 only beyond the cache's window,
thousands of events on. The sandbox's analog (a ring of ``watch_cache_size`` events
per resource) is tested in tests/sandbox_kube/test_watch.py.

Each answer is recorded as fields (status, Warning header, body flattened to dotted
paths) after normalising what differs by nature (uids, resourceVersions, timestamps,
managedFields); the records are compared field by field. A difference must be listed
in the allowlist table of ``provisioner/sandbox/kube/README.md`` (step pattern, field
pattern, reason), which the test reads; a row that no longer differs fails it too.
"""

from __future__ import annotations

import pytest
import requests

from provisioner.sandbox.kube import KubeSandbox
from testbeds.peers import RealKube

from . import kube_script_access, kube_script_deletes
from .differential import Record, check_against_allowlist, differences
from .kube_target import (
    CLASS,
    CORE,
    JSON_PATCH,
    MERGE,
    NS,
    PROTOBUF,
    ROOT_CA,
    STRATEGIC,
    VERSIONS,
    Step,
    Target,
    cm,
    keep_rv,
    protobuf_secret,
    read_allowlist,
    sandbox_target,
)

pytestmark = pytest.mark.timeout(180)


def _update(t: Target, stale: bool) -> requests.Response:
    body = cm("a", data={"k": "v2"})
    body["metadata"]["resourceVersion"] = t.ctx["rv_a_created"] if stale else t.ctx["rv_a"]
    return t.call("PUT", f"{CORE}/configmaps/a", body)


def _bound(t: Target) -> requests.Response:
    def bound() -> bool:
        claim = t.call("GET", f"{CORE}/persistentvolumeclaims/claim").json()
        return (claim.get("status") or {}).get("phase") == "Bound"

    t.wait("the claim Bound", bound)
    return t.call("GET", f"{CORE}/persistentvolumeclaims/claim")


def _released(t: Target) -> requests.Response:
    def released() -> bool:
        pv = t.call("GET", "/api/v1/persistentvolumes/kdiff-pv").json()
        return (pv.get("status") or {}).get("phase") == "Released"

    t.wait("the volume Released", released)
    return t.call("GET", "/api/v1/persistentvolumes/kdiff-pv")


def _watch_all(t: Target) -> requests.Response:
    path = f"{CORE}/configmaps?watch=1&resourceVersion={t.ctx['rv_start']}&timeoutSeconds=1"
    return t.call("GET", path)


PV = {
    "apiVersion": "v1",
    "kind": "PersistentVolume",
    "metadata": {"name": "kdiff-pv"},
    "spec": {
        "capacity": {"storage": "2Gi"},
        "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": CLASS,
        "glusterfs": {"endpoints": "glusterfs-dynamic-kdiff", "path": "vol_kdiff"},
    },
}
CLAIM = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "claim"},
    "spec": {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": CLASS,
        "resources": {"requests": {"storage": "1Gi"}},
    },
}
EVENT = {
    "apiVersion": "v1",
    "kind": "Event",
    "metadata": {"name": "claim.kdiff"},
    "involvedObject": {"kind": "PersistentVolumeClaim", "namespace": NS, "name": "claim"},
    "reason": "Testing",
    "message": "written by the differential test",
    "type": "Normal",
    "source": {"component": "kdiff"},
    "firstTimestamp": "2026-01-01T00:00:00Z",
    "lastTimestamp": "2026-01-01T00:00:00Z",
    "count": 1,
}

SCRIPT: list[Step] = [
    (
        "create-namespace",
        lambda t: t.call("POST", "/api/v1/namespaces", {"metadata": {"name": NS}}),
    ),
    ("list-empty", lambda t: keep_rv("rv_start", t.call("GET", f"{CORE}/configmaps"), t)),
    (
        "create",
        lambda t: keep_rv(
            "rv_a_created",
            t.call(
                "POST",
                f"{CORE}/configmaps",
                cm("a", data={"k": "v"}, metadata={"name": "a", "labels": {"x": "1"}}),
            ),
            t,
        ),
    ),
    ("create-again", lambda t: t.call("POST", f"{CORE}/configmaps", cm("a"))),
    ("get", lambda t: keep_rv("rv_a", t.call("GET", f"{CORE}/configmaps/a"), t)),
    ("get-missing", lambda t: t.call("GET", f"{CORE}/configmaps/nope")),
    ("get-missing-namespace", lambda t: t.call("GET", "/api/v1/namespaces/nope/configmaps/a")),
    ("post-to-a-name", lambda t: t.call("POST", f"{CORE}/configmaps/a", cm("a"))),
    ("update", lambda t: keep_rv("rv_a", _update(t, stale=False), t)),
    ("update-stale", lambda t: _update(t, stale=True)),
    (
        "update-missing",
        lambda t: t.call("PUT", f"{CORE}/configmaps/nope", cm("nope", data={"k": "v"})),
    ),
    (
        "patch-merge",
        lambda t: t.call("PATCH", f"{CORE}/configmaps/a", {"data": {"m": "1", "k": None}}, MERGE),
    ),
    (
        "patch-strategic",
        lambda t: t.call(
            "PATCH",
            f"{CORE}/configmaps/a",
            {"metadata": {"finalizers": ["kdiff/one"], "labels": {"y": "2"}}},
            STRATEGIC,
        ),
    ),
    (
        "patch-json",
        lambda t: t.call(
            "PATCH",
            f"{CORE}/configmaps/a",
            [
                {"op": "test", "path": "/data/m", "value": "1"},
                {"op": "add", "path": "/data/j", "value": "2"},
                {"op": "remove", "path": "/metadata/labels/x"},
            ],
            JSON_PATCH,
        ),
    ),
    (
        "patch-json-failed-test",
        lambda t: t.call(
            "PATCH",
            f"{CORE}/configmaps/a",
            [{"op": "test", "path": "/data/m", "value": "other"}],
            JSON_PATCH,
        ),
    ),
    (
        "patch-apply-unsupported",
        lambda t: t.call("PATCH", f"{CORE}/configmaps/a", b"data: {}", "text/plain"),
    ),
    (
        "strict-unknown-field",
        lambda t: t.call(
            "POST",
            f"{CORE}/configmaps?fieldValidation=Strict",
            cm("s", data={"k": "v"}, spec={"foo": 1}),
        ),
    ),
    (
        "warn-unknown-field",
        lambda t: t.call(
            "POST", f"{CORE}/configmaps?fieldValidation=Warn", cm("w", extra={"foo": 1})
        ),
    ),
    (
        "strict-patch",
        lambda t: t.call(
            "PATCH",
            f"{CORE}/configmaps/w?fieldValidation=Strict",
            {"foo": 1, "metadata": {"zz": 2}},
            STRATEGIC,
        ),
    ),
    (
        "invalid-name",
        lambda t: t.call("POST", f"{CORE}/configmaps", cm("Bad_Name")),
    ),
    (
        "invalid-claim",
        lambda t: t.call(
            "POST",
            f"{CORE}/persistentvolumeclaims",
            {"metadata": {"name": "bad"}, "spec": {"accessModes": ["Sometimes"]}},
        ),
    ),
    (
        "invalid-volume",
        lambda t: t.call(
            "POST",
            "/api/v1/persistentvolumes",
            {"metadata": {"name": "kdiff-bad"}, "spec": {"accessModes": ["ReadWriteOnce"]}},
        ),
    ),
    (
        "protobuf-secret",
        lambda t: t.call("POST", f"{CORE}/secrets", protobuf_secret("heketi"), PROTOBUF),
    ),
    ("get-secret", lambda t: t.call("GET", f"{CORE}/secrets/heketi")),
    ("delete-with-finalizer", lambda t: t.call("DELETE", f"{CORE}/configmaps/a")),
    ("get-deleting", lambda t: t.call("GET", f"{CORE}/configmaps/a")),
    (
        "add-finalizer-while-deleting",
        lambda t: t.call(
            "PATCH",
            f"{CORE}/configmaps/a",
            {"metadata": {"finalizers": ["kdiff/one", "kdiff/two"]}},
            MERGE,
        ),
    ),
    (
        "remove-finalizer",
        lambda t: t.call(
            "PATCH", f"{CORE}/configmaps/a", {"metadata": {"finalizers": None}}, MERGE
        ),
    ),
    ("get-gone", lambda t: t.call("GET", f"{CORE}/configmaps/a")),
    ("delete-missing", lambda t: t.call("DELETE", f"{CORE}/configmaps/a")),
    ("watch-replay", _watch_all),
    ("root-ca-configmap", lambda t: t.call("GET", f"{CORE}/configmaps/{ROOT_CA}")),
    ("create-volume", lambda t: t.call("POST", "/api/v1/persistentvolumes", PV)),
    ("create-claim", lambda t: t.call("POST", f"{CORE}/persistentvolumeclaims", CLAIM)),
    ("claim-bound", _bound),
    ("volume-bound", lambda t: t.call("GET", "/api/v1/persistentvolumes/kdiff-pv")),
    ("delete-claim", lambda t: t.call("DELETE", f"{CORE}/persistentvolumeclaims/claim")),
    ("volume-released", _released),
    ("create-event", lambda t: t.call("POST", f"{CORE}/events", EVENT)),
    (
        "event-as-events-v1",
        lambda t: t.call("GET", f"/apis/events.k8s.io/v1/namespaces/{NS}/events/claim.kdiff"),
    ),
    ("delete-volume", lambda t: t.call("DELETE", "/api/v1/persistentvolumes/kdiff-pv")),
]


# The base script, then DeleteOptions/propagation/dry runs, then RBAC and reviews.
ALL_STEPS = SCRIPT + kube_script_deletes.STEPS + kube_script_access.STEPS
names = [name for name, _ in ALL_STEPS]
assert len(names) == len(set(names)), "step names must be unique"


def run_script(target: Target) -> dict[str, Record]:
    return {name: target.record(step(target)) for name, step in ALL_STEPS}


# -- the peers -------------------------------------------------------------------------


@pytest.mark.parametrize("real_kube", list(VERSIONS), indirect=True)
def test_sandbox_matches_the_real_apiserver(real_kube: RealKube) -> None:
    version = VERSIONS[real_kube.version]
    real = run_script(Target(real_kube.server, real_kube.session))
    with KubeSandbox(version=version) as kube:
        sandbox = run_script(sandbox_target(kube))
    found = differences([name for name, _ in ALL_STEPS], sandbox, real)
    check_against_allowlist(found, read_allowlist(version.rsplit(".", 1)[0]))

"""Differential fidelity: the Kubernetes API sandbox against the real kube-apiserver
1.25 and 1.37 (with kube-controller-manager, whose PV binder binds the static volume).

One scripted sequence of requests runs against a fresh sandbox and the real peer, at
1.25.16 and at 1.37.2 (the sandbox reporting the same version): create/get/update/
patch (merge, strategic, JSON patch)/delete, 409 AlreadyExists and Conflict, 404
and 405 shapes, 422 Invalid with its ``details.causes``, field validation
(Strict/Warn), finalizers (delete →
deletionTimestamp, removal → gone), protobuf bodies, a watch replayed from the start
of the script (event types and order), a static PV + claim bound by the binder and
released, events read through both APIs.

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

import fnmatch
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from provisioner.sandbox.kube import KubeSandbox
from testbeds.peers import RealKube

from .differential import Allowlist, Record, check_against_allowlist, differences, flatten

pytestmark = pytest.mark.timeout(180)

NS = "kdiff"
ROOT_CA = "kube-root-ca.crt"
CLASS = "kdiff-manual"  # a class no other test's volumes use: the binder picks ours
CORE = f"/api/v1/namespaces/{NS}"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PROTOBUF = "application/vnd.kubernetes.protobuf"

README = Path(__file__).resolve().parents[2] / "provisioner/sandbox/kube/README.md"


def read_allowlist(release: str, path: Path = README) -> Allowlist:
    """The rows of the README's allowlist table (| `k8s` | `step` | `field` | reason |)
    whose ``k8s`` pattern matches ``release`` ("1.25", "1.37")."""
    text = path.read_text()
    table = text.split("<!-- allowlist: begin -->", 1)[1].split("<!-- allowlist: end -->", 1)[0]
    rows: Allowlist = []
    for line in table.strip().splitlines()[2:]:  # after the header and its rule
        k8s, step, pattern, reason = (c.strip() for c in line.strip().strip("|").split("|", 3))
        if fnmatch.fnmatchcase(release, k8s.strip("`")):
            rows.append((step.strip("`"), pattern.strip("`"), reason))
    assert rows, f"no allowlist rows for {release} in {path}"
    return rows


# -- normalising -----------------------------------------------------------------------

UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
RV_TEXT = re.compile(r"(resourceVersion|ResourceVersion)(\\?\"?:? ?\\?\"?)\d+")
TOO_OLD = re.compile(r"too old resource version: \d+ \(\d+\)")
QUOTED_OBJECT = re.compile(r'Invalid value: "(\{.*?\}|map\[.*?\])": ')
VOLATILE = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "continue")


def norm_text(text: str) -> str:
    text = TOO_OLD.sub("too old resource version: <rv> (<rv>)", text)
    text = QUOTED_OBJECT.sub('Invalid value: "<object>": ', text)
    text = RV_TEXT.sub(r"\1\2<rv>", text)
    return STAMP.sub("<time>", UID.sub("<uid>", text))


def scrub(value: Any) -> Any:
    """Volatile metadata → placeholders (present or not is still compared)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "managedFields":
                continue  # server-side apply bookkeeping: not emulated (README)
            if k in VOLATILE:
                out[k] = "<set>" if v not in (None, "", [], {}) else v
            elif k in ("firstTimestamp", "lastTimestamp", "eventTime", "time", "renewTime"):
                out[k] = "<time>" if v else v
            else:
                out[k] = scrub(v)
        return out
    if isinstance(value, list):
        return [scrub(v) for v in value]
    return value


# -- targets ---------------------------------------------------------------------------


@dataclass
class Target:
    url: str
    session: requests.Session
    ctx: dict[str, Any] = field(default_factory=dict)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        ctype: str = "application/json",
        timeout: float = 30,
    ) -> requests.Response:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body)
        headers = {"Content-Type": ctype, "Accept": "application/json"}
        return self.session.request(
            method, self.url + path, data=data, headers=headers, timeout=timeout
        )

    def record(self, r: requests.Response) -> Record:
        rec: Record = {"status": r.status_code}
        if "Warning" in r.headers:
            rec["warning"] = norm_text(r.headers["Warning"])
        ctype = r.headers.get("Content-Type", "")
        if "json" in ctype:
            if "watch=1" in (r.request.url or ""):  # a watch stream: one event a line
                events = [json.loads(line) for line in r.text.splitlines() if line.strip()]
                flatten(scrub(_watch_summary(events)), "events", rec, norm_text)
            else:
                flatten(scrub(_without_root_ca(r.json())), "body", rec, norm_text)
        else:
            rec["body"] = norm_text(r.text.strip())
        return rec

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"{self.url}: {what}"
            time.sleep(0.1)  # polling interval of a wait with a deadline


def _without_root_ca(body: Any) -> Any:
    """kube-controller-manager publishes kube-root-ca.crt into a new namespace whenever
    it gets to it: out of lists (its own step compares it)."""
    if isinstance(body, dict) and isinstance(body.get("items"), list):
        items = [i for i in body["items"] if (i.get("metadata") or {}).get("name") != ROOT_CA]
        body = {**body, "items": items}
    return body


def _watch_summary(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Event types and the objects' names, in order (the objects are compared by the
    steps that wrote them)."""
    out = []
    for e in events:
        obj = e.get("object") or {}
        if (obj.get("metadata") or {}).get("name") == ROOT_CA:
            continue  # published by kube-controller-manager whenever it gets to it

        item: dict[str, Any] = {"type": e.get("type")}
        if e.get("type") == "ERROR":
            item.update({"code": obj.get("code"), "reason": obj.get("reason")})
            item["message"] = obj.get("message")
        elif e.get("type") != "BOOKMARK":
            item["name"] = (obj.get("metadata") or {}).get("name")
            item["finalizers"] = (obj.get("metadata") or {}).get("finalizers")
            item["deleting"] = bool((obj.get("metadata") or {}).get("deletionTimestamp"))
        out.append(item)
    return out


# -- protobuf bodies (the test's own tiny encoder) -----------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def protobuf_secret(name: str) -> bytes:
    meta = _field(1, name.encode())
    entry = _field(1, b"key") + _field(2, b"s3cret")
    raw = _field(1, meta) + _field(2, entry) + _field(3, b"kubernetes.io/glusterfs")
    type_meta = _field(1, b"v1") + _field(2, b"Secret")
    return b"k8s\x00" + _field(1, type_meta) + _field(2, raw)


# -- the script ------------------------------------------------------------------------


def cm(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra}


Step = tuple[str, Callable[[Target], requests.Response]]


def _update(t: Target, stale: bool) -> requests.Response:
    body = cm("a", data={"k": "v2"})
    body["metadata"]["resourceVersion"] = t.ctx["rv_a_created"] if stale else t.ctx["rv_a"]
    return t.call("PUT", f"{CORE}/configmaps/a", body)


def _keep_rv(name: str, r: requests.Response, t: Target) -> requests.Response:
    if r.status_code < 300:
        t.ctx[name] = r.json()["metadata"]["resourceVersion"]
    return r


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
    ("list-empty", lambda t: _keep_rv("rv_start", t.call("GET", f"{CORE}/configmaps"), t)),
    (
        "create",
        lambda t: _keep_rv(
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
    ("get", lambda t: _keep_rv("rv_a", t.call("GET", f"{CORE}/configmaps/a"), t)),
    ("get-missing", lambda t: t.call("GET", f"{CORE}/configmaps/nope")),
    ("get-missing-namespace", lambda t: t.call("GET", "/api/v1/namespaces/nope/configmaps/a")),
    ("post-to-a-name", lambda t: t.call("POST", f"{CORE}/configmaps/a", cm("a"))),
    ("update", lambda t: _keep_rv("rv_a", _update(t, stale=False), t)),
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


def run_script(target: Target) -> dict[str, Record]:
    return {name: target.record(step(target)) for name, step in SCRIPT}


# -- the peers -------------------------------------------------------------------------


# the real peer (testbeds.peers's name) → the version the sandbox reports
VERSIONS = {"1.25": "1.25.16", "current": "1.37.2"}


def sandbox_target(kube: KubeSandbox) -> Target:
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {kube.token}"
    assert kube.url is not None
    return Target(kube.url, session)


@pytest.mark.parametrize("real_kube", list(VERSIONS), indirect=True)
def test_sandbox_matches_the_real_apiserver(real_kube: RealKube) -> None:
    version = VERSIONS[real_kube.version]
    real = run_script(Target(real_kube.server, real_kube.session))
    with KubeSandbox(version=version) as kube:
        sandbox = run_script(sandbox_target(kube))
    found = differences([name for name, _ in SCRIPT], sandbox, real)
    check_against_allowlist(found, read_allowlist(version.rsplit(".", 1)[0]))

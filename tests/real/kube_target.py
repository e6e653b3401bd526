"""What the Kubernetes differential scripts share: a target (the sandbox or a real
kube-apiserver) answering requests, answers recorded as normalised fields, the README
allowlist, and a tiny protobuf encoder for request bodies.

Used by test_differential_kube.py (its scripts: kube_script.py, kube_script_deletes.py,
kube_script_access.py), test_differential_kubectl.py and test_differential_helm.py.
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

import requests

from provisioner.sandbox.kube import KubeSandbox

from .differential import Allowlist, Record, flatten

NS = "kdiff"
ROOT_CA = "kube-root-ca.crt"
CLASS = "kdiff-manual"  # a class no other test's volumes use: the binder picks ours
CORE = f"/api/v1/namespaces/{NS}"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PROTOBUF = "application/vnd.kubernetes.protobuf"

README = Path(__file__).resolve().parents[2] / "provisioner/sandbox/kube/README.md"


def read_allowlist(release: str, prefix: str = "", path: Path = README) -> Allowlist:
    """The rows of the README's allowlist table (| `k8s` | `step` | `field` | reason |)
    whose ``k8s`` pattern matches ``release`` ("1.25", "1.37") and whose step belongs to
    the caller: ``prefix`` "kubectl:" or "helm:" for those differentials' rows (their
    steps are named so), "" for the API script's (steps without a colon)."""
    text = path.read_text()
    table = text.split("<!-- allowlist: begin -->", 1)[1].split("<!-- allowlist: end -->", 1)[0]
    rows: Allowlist = []
    for line in table.strip().splitlines()[2:]:  # after the header and its rule
        k8s, step, pattern, reason = (c.strip() for c in line.strip().strip("|").split("|", 3))
        step = step.strip("`")
        mine = step.startswith(prefix) if prefix else ":" not in step
        if mine and fnmatch.fnmatchcase(release, k8s.strip("`")):
            rows.append((step, pattern.strip("`"), reason))
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


# Allocated, so different by nature (the sandbox's range is not the real peers').
ADDRESSES = ("clusterIP", "clusterIPs", "nodePort")
# The order of an access review's rules follows the real server's binding cache (a
# Go map): not meaningful, compared sorted.
UNORDERED = ("resourceRules", "nonResourceRules")


def scrub(value: Any) -> Any:
    """Volatile metadata → placeholders (present or not is still compared)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "managedFields":
                continue  # server-side apply bookkeeping: not emulated (README)
            if k in VOLATILE or k in ADDRESSES:
                out[k] = "<set>" if v not in (None, "", [], {}) else v
            elif k in ("firstTimestamp", "lastTimestamp", "eventTime", "time", "renewTime"):
                out[k] = "<time>" if v else v
            elif k == "name" and value.get("generateName") and isinstance(v, str):
                out[k] = "<generated>" if v.startswith(value["generateName"]) else v
            elif k in UNORDERED and isinstance(v, list):
                out[k] = sorted(scrub(v), key=lambda r: json.dumps(r, sort_keys=True))
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
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body)
        sent = {"Content-Type": ctype, "Accept": "application/json", **(headers or {})}
        return self.session.request(
            method, self.url + path, data=data, headers=sent, timeout=timeout
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


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def protobuf_body(api_version: str, kind: str, raw: bytes) -> bytes:
    """The ``k8s\x00`` + runtime.Unknown envelope kube clients send."""
    type_meta = pb_field(1, api_version.encode()) + pb_field(2, kind.encode())
    return b"k8s\x00" + pb_field(1, type_meta) + pb_field(2, raw)


def protobuf_secret(name: str) -> bytes:
    meta = pb_field(1, name.encode())
    entry = pb_field(1, b"key") + pb_field(2, b"s3cret")
    raw = pb_field(1, meta) + pb_field(2, entry) + pb_field(3, b"kubernetes.io/glusterfs")
    return protobuf_body("v1", "Secret", raw)


def cm(name: str, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **extra}


Step = tuple[str, Callable[[Target], requests.Response]]


def keep_rv(name: str, r: requests.Response, t: Target) -> requests.Response:
    if r.status_code < 300:
        t.ctx[name] = r.json()["metadata"]["resourceVersion"]
    return r


# the real peer (testbeds.peers's name) → the version the sandbox reports
VERSIONS = {"1.25": "1.25.16", "current": "1.37.2"}


def sandbox_target(kube: KubeSandbox) -> Target:
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {kube.token}"
    assert kube.url is not None
    return Target(kube.url, session)

"""DeleteOptions as clients send them and the garbage collector's part of a delete.

The shapes were taken from kube-apiserver 1.25.16 and 1.37.2
(tests/real/test_differential_kube.py compares them): a body that does not decode is a
500 with no reason at 1.25 and a 400 at 1.37; an unknown policy or dryRun value a 422
on ``DeleteOptions``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from provisioner.sandbox.kube import KubeSandbox
from provisioner.sandbox.kube.gojson import syntax_error

PROTOBUF = "application/vnd.kubernetes.protobuf"
HELM_DELETE = b'k8s\x00\n\x13\n\x02v1\x12\rDeleteOptions\x12\x00\x1a\x00"\x00'
CMS = "/api/v1/namespaces/default/configmaps"
Call = Callable[..., requests.Response]


@pytest.fixture(params=["1.25.16", "1.37.2"])
def http(request: pytest.FixtureRequest) -> Iterator[tuple[KubeSandbox, Call]]:
    with KubeSandbox(version=request.param) as kube, requests.Session() as session:
        session.trust_env = False

        def call(method: str, path: str, body: Any = None, ctype: str = "application/json"):
            data = body if isinstance(body, bytes) or body is None else json.dumps(body)
            return session.request(
                method, f"{kube.url}{path}", data=data, headers={"Content-Type": ctype}, timeout=10
            )

        yield kube, call


def _cm(call: Call, name: str, **meta: Any) -> dict[str, Any]:
    r = call("POST", CMS, {"metadata": {"name": name, **meta}})
    assert r.status_code == 201, r.text
    made: dict[str, Any] = r.json()
    return made


@pytest.mark.parametrize(
    ("body", "ctype"),
    [
        ({"propagationPolicy": "Background"}, "application/json"),
        ({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}, "application/json"),
        ({"kind": "DeleteOptions", "apiVersion": "apps/v1", "bogus": 1}, "application/json"),
        (b"propagationPolicy: Background\n", "application/yaml"),
        (HELM_DELETE, PROTOBUF),
        (b"{}", ""),
        (None, "application/json"),
    ],
)
def test_bodies_clients_send_are_accepted(http, body: Any, ctype: str) -> None:
    _, call = http
    made = _cm(call, "d")
    r = call("DELETE", f"{CMS}/d", body, ctype)
    assert r.status_code == 200, r.text
    # a ConfigMap's registry answers a Status naming what it deleted
    assert r.json()["details"] == {
        "name": "d",
        "kind": "configmaps",
        "uid": made["metadata"]["uid"],
    }
    assert call("GET", f"{CMS}/d").status_code == 404


@pytest.mark.parametrize(
    ("body", "ctype", "message"),
    [
        (b"not json", "application/json",
         "couldn't get version/kind; json parse error: invalid character 'o' in literal null "
         "(expecting 'u')"),
        (b'{"propagationPolicy":', "application/json",
         "couldn't get version/kind; json parse error: unexpected end of JSON input"),
        ({"gracePeriodSeconds": "x"}, "application/json",
         "json: cannot unmarshal string into Go struct field DeleteOptions.gracePeriodSeconds "
         "of type int64"),
        ({"kind": "Status", "apiVersion": "v1"}, "application/json",
         "converting (v1.Status) to (v1.DeleteOptions): unknown conversion"),
        (b"garbage", PROTOBUF,
         "provided data does not appear to be a protobuf message, expected prefix "
         "[107 56 115 0]"),
    ],
)  # fmt: skip
def test_undecodable_bodies_are_refused_as_the_release_refuses_them(
    http, body: Any, ctype: str, message: str
) -> None:
    kube, call = http
    _cm(call, "keep")
    r = call("DELETE", f"{CMS}/keep", body, ctype)
    status = r.json()
    assert status["message"] == message
    if kube.version == "1.25.16":
        assert r.status_code == 500 and "reason" not in status
    else:
        assert r.status_code == 400 and status["reason"] == "BadRequest"
    assert call("GET", f"{CMS}/keep").status_code == 200


def test_bad_values_are_a_422_on_delete_options(http) -> None:
    kube, call = http
    _cm(call, "keep")
    r = call("DELETE", f"{CMS}/keep", {"propagationPolicy": "Sideways", "dryRun": ["Nope"]})
    assert r.status_code == 422
    details = r.json()["details"]
    assert details["kind"] == "DeleteOptions" and details["group"] == "meta.k8s.io"
    assert [c["field"] for c in details["causes"]] == ["propagationPolicy", "dryRun"]
    shown = '["Nope"]' if kube.version == "1.37.2" else '[]string{"Nope"}'
    assert details["causes"][1]["message"] == f'Unsupported value: {shown}: supported values: "All"'
    assert call("DELETE", f"{CMS}/keep", b"{}", "text/plain").status_code == 415
    r = call("DELETE", f"{CMS}/keep?gracePeriodSeconds=x")
    assert r.status_code == 400 and r.json()["message"] == (
        'strconv.ParseInt: parsing "x": invalid syntax'
    )
    assert call("GET", f"{CMS}/keep").status_code == 200


def test_foreground_waits_for_blocking_dependents(http) -> None:
    kube, call = http
    owner = _cm(call, "owner")
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
           "uid": owner["metadata"]["uid"], "blockOwnerDeletion": True}  # fmt: skip
    _cm(call, "dep", ownerReferences=[ref], finalizers=["example.com/slow"])
    r = call("DELETE", f"{CMS}/owner", {"propagationPolicy": "Foreground"})
    assert r.status_code == 200
    assert r.json()["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert kube.wait_idle()
    # the dependent is being deleted, but its own finalizer keeps it: the owner waits
    assert kube.get_object("configmaps", "default", "dep")["metadata"]["deletionTimestamp"]
    assert kube.get_object("configmaps", "default", "owner") is not None
    call("PATCH", f"{CMS}/dep", {"metadata": {"finalizers": None}}, "application/merge-patch+json")
    assert kube.wait_idle()
    assert kube.get_object("configmaps", "default", "owner") is None


def test_orphan_frees_dependents_and_background_collects_them(http) -> None:
    kube, call = http
    for policy in ("Orphan", "Background"):
        owner = _cm(call, f"o-{policy.lower()}")
        ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": f"o-{policy.lower()}",
               "uid": owner["metadata"]["uid"]}  # fmt: skip
        _cm(call, f"d-{policy.lower()}", ownerReferences=[ref])
        call("DELETE", f"{CMS}/o-{policy.lower()}", {"propagationPolicy": policy})
    assert kube.wait_idle()
    freed = kube.get_object("configmaps", "default", "d-orphan")
    assert freed is not None and "ownerReferences" not in freed["metadata"]
    assert kube.get_object("configmaps", "default", "o-orphan") is None
    assert kube.get_object("configmaps", "default", "d-background") is None


def test_a_dependent_of_an_owner_that_never_was_is_collected(http) -> None:
    kube, call = http
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "no-such-uid"}
    _cm(call, "orphaned", ownerReferences=[ghost])
    assert kube.wait_idle()
    assert kube.get_object("configmaps", "default", "orphaned") is None


def test_delete_collection_answers_the_items_it_listed(http) -> None:
    kube, call = http
    _cm(call, "a", labels={"x": "1"})
    _cm(call, "b", labels={"x": "1"}, finalizers=["example.com/keep"])
    r = call("DELETE", f"{CMS}?labelSelector=x%3D1", HELM_DELETE, PROTOBUF)
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert all("deletionTimestamp" not in i["metadata"] for i in items)  # as listed
    assert kube.get_object("configmaps", "default", "a") is None
    assert kube.get_object("configmaps", "default", "b")["metadata"]["deletionTimestamp"]


def test_go_json_messages() -> None:
    assert syntax_error(b'{"a":1}') is None
    assert syntax_error(b"") == "unexpected end of JSON input"
    assert syntax_error(b"{a}") == (
        "invalid character 'a' looking for beginning of object key string"
    )
    assert syntax_error(b'{"a" 1}') == "invalid character '1' after object key"
    assert syntax_error(b"[1 2]") == "invalid character '2' after array element"
    assert syntax_error(b"1.") == "invalid character ' ' after decimal point in numeric literal"
    assert syntax_error(b"tr") == "invalid character ' ' in literal true (expecting 'u')"
    assert syntax_error(b'{"a":1}x') == "invalid character 'x' after top-level value"
    assert syntax_error(b'"\\q"') == "invalid character 'q' in string escape code"

"""Protobuf request bodies: kubectl's typed ``create`` commands, and hand-made
envelopes for the edges (other kinds, malformed or hostile bytes)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import requests

from provisioner.sandbox.kube import KubeSandbox
from provisioner.sandbox.kube.protobuf import MEDIA_TYPE

from .conftest import KUBECTL

needs_kubectl = pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl binary not found")


# -- a minimal encoder, test-side only ---------------------------------------------------


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _s(number: int, text: str) -> bytes:
    return _len(number, text.encode())


def _entry(number: int, key: str, value: bytes) -> bytes:
    return _len(number, _s(1, key) + _len(2, value))


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _s(1, api_version) + _s(2, kind)
    return b"k8s\x00" + _len(1, type_meta) + _len(2, raw) + _s(3, "") + _s(4, "")


def post(kube: KubeSandbox, path: str, body: bytes, ctype: str = MEDIA_TYPE) -> requests.Response:
    assert kube.url is not None
    return requests.post(
        kube.url + path,
        data=body,
        headers={
            "Content-Type": ctype,
            "Accept": f"{MEDIA_TYPE},application/json",
            "Authorization": f"Bearer {kube.token}",
        },
        timeout=10,
    )


# Go writes every non-pointer field, zero or not: a Time of 0 s, "" strings, generation 0.
ZERO_META = _s(2, "") + _s(4, "") + _s(5, "") + _s(6, "") + _int(7, 0) + _len(8, b"")


def test_secret_with_every_metadata_field(kube: KubeSandbox) -> None:
    meta = (
        _s(1, "heketi")
        + ZERO_META
        + _entry(11, "app", b"gluster")
        + _entry(12, "note", b"")
        + _len(13, _s(1, "ConfigMap") + _s(3, "owner") + _s(4, "u-1") + _s(5, "v1") + _int(6, 1))
        + _s(14, "example.com/keep")
        + _int(10, 0)
    )
    raw = (
        _len(1, meta)
        + _entry(2, "key", b"\x00secret\xff")
        + _s(3, "kubernetes.io/glusterfs")
        + _int(5, 0)
    )
    r = post(kube, "/api/v1/namespaces/default/secrets", envelope("v1", "Secret", raw))
    assert r.status_code == 201, r.text
    # what was stored, as created (the owner "u-1" does not exist: the garbage
    # collector deletes the Secret soon after, as kube-controller-manager would)
    stored = r.json()
    assert stored["type"] == "kubernetes.io/glusterfs"
    assert base64.b64decode(stored["data"]["key"]) == b"\x00secret\xff"
    m = stored["metadata"]
    assert m["labels"] == {"app": "gluster"}
    assert m["annotations"] == {"note": ""}  # an empty map value is a value
    assert m["ownerReferences"] == [
        {"kind": "ConfigMap", "name": "owner", "uid": "u-1", "apiVersion": "v1", "controller": True}
    ]
    assert m["finalizers"] == ["example.com/keep"]
    assert stored["immutable"] is False  # a pointer field: present means set
    for zero in ("generateName", "selfLink", "generation"):
        assert zero not in m, zero
    assert m["resourceVersion"] != "" and m["uid"]


def test_configmap_and_serviceaccount(kube: KubeSandbox) -> None:
    cm = _len(1, _s(1, "cm") + ZERO_META) + _entry(2, "a", b"b") + _entry(3, "bin", b"\x01")
    r = post(kube, "/api/v1/namespaces/default/configmaps", envelope("v1", "ConfigMap", cm))
    assert r.status_code == 201, r.text
    assert r.json()["data"] == {"a": "b"}
    assert r.json()["binaryData"] == {"bin": "AQ=="}
    sa = _len(1, _s(1, "robot")) + _len(3, _s(1, "pull")) + _int(4, 0)
    r = post(
        kube, "/api/v1/namespaces/default/serviceaccounts", envelope("v1", "ServiceAccount", sa)
    )
    assert r.status_code == 201, r.text
    assert r.json()["imagePullSecrets"] == [{"name": "pull"}]
    assert r.json()["automountServiceAccountToken"] is False


def test_other_kinds_get_415_naming_the_accepted_types(kube: KubeSandbox) -> None:
    body = envelope("storage.k8s.io/v1", "StorageClass", _len(1, _s(1, "sc")))
    r = post(kube, "/apis/storage.k8s.io/v1/storageclasses", body)
    assert r.status_code == 415
    status = r.json()
    assert status["reason"] == "UnsupportedMediaType"
    assert status["message"] == (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json"
    )
    r = post(kube, "/api/v1/namespaces/default/secrets", b"name: x", "application/x-yaml")
    assert r.status_code == 415
    assert MEDIA_TYPE in r.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        b"not protobuf at all",
        b"k8s\x00\x0a\xff",  # truncated length
        b"k8s\x00" + _len(1, _s(1, "v1") + _s(2, "Secret")) + _len(2, b"\x0a\x80"),
        envelope("v1", "Pod", b""),  # a kind with no schema here
        b"k8s\x00" + _len(1, _s(1, "v1") + _s(2, "Secret")) + _s(3, "gzip"),
        envelope("v1", "Secret", _len(1, _len(1, b"\xff\xfe"))),  # name not UTF-8
    ],
)
def test_malformed_bodies_are_400_and_store_nothing(kube: KubeSandbox, body: bytes) -> None:
    before = len(kube.list_objects("secrets", "default"))
    r = post(kube, "/api/v1/namespaces/default/secrets", body)
    assert r.status_code == 400, r.text
    assert r.json()["reason"] == "BadRequest"
    assert len(kube.list_objects("secrets", "default")) == before


def test_envelope_kind_must_match_the_resource(kube: KubeSandbox) -> None:
    """A Secret envelope posted to configmaps is refused, not stored as a ConfigMap."""
    raw = _len(1, _s(1, "smuggled")) + _entry(2, "key", b"x")
    r = post(kube, "/api/v1/namespaces/default/configmaps", envelope("v1", "Secret", raw))
    assert r.status_code == 400
    assert kube.get_object("configmaps", "default", "smuggled") is None


@needs_kubectl
def test_kubectl_typed_creates_in_default_mode(kubectl, kube: KubeSandbox) -> None:
    assert "namespace/x created" in kubectl("create", "namespace", "x")
    out = kubectl(
        "create",
        "secret",
        "generic",
        "heketi",
        "-n",
        "x",
        "--type=kubernetes.io/glusterfs",
        "--from-literal=key=s3cret",
    )
    assert "secret/heketi created" in out
    assert "configmap/cm created" in kubectl(
        "create", "configmap", "cm", "-n", "x", "--from-literal=a=b"
    )
    assert "serviceaccount/robot created" in kubectl("create", "serviceaccount", "robot", "-n", "x")
    ns = kube.get_object("namespaces", "", "x")
    assert ns is not None
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    secret = kube.get_object("secrets", "x", "heketi")
    assert secret is not None and secret["type"] == "kubernetes.io/glusterfs"
    assert base64.b64decode(secret["data"]["key"]) == b"s3cret"
    assert "creationTimestamp" in secret["metadata"]
    assert "robot" in kubectl("get", "sa", "-n", "x")
    assert 'serviceaccount "robot" deleted' in kubectl("delete", "sa", "robot", "-n", "x")
    assert "already exists" in kubectl("create", "namespace", "x", ok=False)
    # protobuf is sent only by typed commands; the request log shows where it went
    writes = [r for r in kube.request_log if r.verb == "create"]
    assert {r.resource for r in writes} == {
        "namespaces",
        "secrets",
        "configmaps",
        "serviceaccounts",
    }

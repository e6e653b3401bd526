"""OpenAPI v3 and server-side field validation, and what kubectl does with them:
``apply`` with its default (strict) validation, re-apply by strategic merge, ``apply -k``.

The expected texts are the real kube-apiserver 1.37's (tests/real/test_differential_kube.py
compares them live)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from provisioner.sandbox.kube import KubeSandbox
from provisioner.sandbox.kube.openapi import schema_data
from provisioner.sandbox.kube.resources import RESOURCES

from .conftest import KUBECTL

REPO = Path(__file__).resolve().parents[2]
CM_PATH = "/api/v1/namespaces/default/configmaps"
needs_kubectl = pytest.mark.skipif(not Path(KUBECTL).exists(), reason="kubectl binary not found")


def call(
    kube: KubeSandbox,
    method: str,
    path: str,
    body: Any,
    ctype: str = "application/json",
) -> requests.Response:
    assert kube.url is not None
    data = body if isinstance(body, bytes) else json.dumps(body)
    return requests.request(
        method,
        kube.url + path,
        data=data,
        headers={"Content-Type": ctype, "Authorization": f"Bearer {kube.token}"},
        timeout=10,
    )


def test_index_and_documents_describe_every_served_kind(kube: KubeSandbox) -> None:
    assert kube.url is not None
    index = requests.get(kube.url + "/openapi/v3", timeout=10).json()["paths"]
    assert set(index) >= {"api/v1", "apis/storage.k8s.io/v1", "apis/apps/v1"}
    schemas = schema_data()["schemas"]
    for rt in RESOURCES:
        gv = f"api/{rt.version}" if not rt.group else f"apis/{rt.group}/{rt.version}"
        url = index[gv]["serverRelativeURL"]
        assert "?hash=" in url
        doc = requests.get(kube.url + url, timeout=10).json()
        patches = [
            p["patch"]
            for p in doc["paths"].values()
            if "patch" in p
            and p["patch"]["x-kubernetes-group-version-kind"]
            == {"group": rt.group, "version": rt.version, "kind": rt.kind}
        ]
        assert patches, rt.plural
        for op in patches:
            assert {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}} in op[
                "parameters"
            ]
            assert "application/strategic-merge-patch+json" in op["requestBody"]["content"]
            assert "application/apply-patch+yaml" not in op["requestBody"]["content"]
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        assert any(
            gvk in (s.get("x-kubernetes-group-version-kind") or []) for s in schemas.values()
        )


def test_schema_file_is_the_real_servers_and_every_reference_resolves() -> None:
    data = schema_data()
    assert data["source"].startswith("kube-apiserver v1.37")
    text = json.dumps(data["schemas"])
    refs = {r.split('"')[0] for r in text.split('"$ref": "#/components/schemas/')[1:]}
    assert refs and refs <= set(data["schemas"])
    assert "description" not in text


@pytest.mark.parametrize(
    ("mode", "status", "warning"),
    [
        ("Strict", 400, None),
        ("Warn", 201, True),
        ("", 201, True),  # no parameter: Warn, as since 1.27
        ("Ignore", 201, None),
    ],
)
def test_unknown_fields_on_create(
    kube: KubeSandbox, mode: str, status: int, warning: bool | None
) -> None:
    body = {"metadata": {"name": "fv", "bar": 1}, "data": {"x": "y"}, "foo": 1, "spec": {"a": 1}}
    query = f"?fieldValidation={mode}" if mode else ""
    r = call(kube, "POST", CM_PATH + query, body)
    assert r.status_code == status, r.text
    found = 'unknown field "metadata.bar", unknown field "foo", unknown field "spec"'
    if status == 400:
        assert r.json()["message"] == (
            f'ConfigMap in version "v1" cannot be handled as a ConfigMap: '
            f"strict decoding error: {found}"
        )
        assert kube.get_object("configmaps", "default", "fv") is None
        return
    if warning:
        assert r.headers["Warning"] == (
            '299 - "unknown field \\"metadata.bar\\"", 299 - "unknown field \\"foo\\"", '
            '299 - "unknown field \\"spec\\""'
        )
    else:
        assert "Warning" not in r.headers
    stored = kube.get_object("configmaps", "default", "fv")
    assert stored is not None
    assert "foo" not in stored and "spec" not in stored and "bar" not in stored["metadata"]


def test_duplicates_nested_paths_and_bad_mode(kube: KubeSandbox) -> None:
    dup = b'{"metadata":{"name":"d"},"data":{"x":"y"},"data":{"x":"z"}}'
    r = call(kube, "POST", CM_PATH + "?fieldValidation=Strict", dup)
    assert r.status_code == 400
    assert r.json()["message"].endswith('strict decoding error: duplicate field "data"')
    svc = {"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "bogus": 1}]}}
    r = call(kube, "POST", "/api/v1/namespaces/default/services?fieldValidation=Strict", svc)
    assert r.json()["message"].endswith('unknown field "spec.ports[0].bogus"')
    r = call(kube, "POST", CM_PATH + "?fieldValidation=bogus", {"metadata": {"name": "b"}})
    assert r.status_code == 422
    assert r.json()["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: '
        '"bogus": supported values: "", "Ignore", "Strict", "Warn"'
    )


def test_unknown_fields_in_patches(kube: KubeSandbox) -> None:
    assert call(kube, "POST", CM_PATH, {"metadata": {"name": "p"}}).status_code == 201
    path = CM_PATH + "/p?fieldValidation="
    patch = {"foo": 1, "metadata": {"zz": 2}}
    found = 'strict decoding error: unknown field "foo", unknown field "metadata.zz"'
    r = call(kube, "PATCH", path + "Strict", patch, "application/strategic-merge-patch+json")
    assert r.status_code == 422
    assert r.json()["message"] == (
        f' "" is invalid: patch: Invalid value: "map[foo:1 metadata:map[zz:2]]": {found}'
    )
    assert r.json()["details"]["causes"][0]["field"] == "patch"
    r = call(kube, "PATCH", path + "Strict", patch, "application/merge-patch+json")
    assert r.status_code == 422 and r.json()["message"].endswith(found)
    r = call(kube, "PATCH", path + "Warn", patch, "application/merge-patch+json")
    assert r.status_code == 200
    assert r.headers["Warning"].count("299 - ") == 2
    assert "foo" not in r.json()
    # strategic-merge directives are not fields
    directive = {"metadata": {"$setElementOrder/finalizers": [], "labels": {"a": "b"}}}
    r = call(kube, "PATCH", path + "Strict", directive, "application/strategic-merge-patch+json")
    assert r.status_code == 200, r.text


def test_a_tenants_unknown_claim_fields_are_never_stored(kube: KubeSandbox) -> None:
    """Hostile tenant: fields the schema lacks (say, a Heketi volume id of their
    choosing) are refused or dropped, whatever the mode: nothing downstream sees them."""
    claim = {
        "metadata": {"name": "c", "heketiVolume": "0" * 32},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}},
            "gid": 0,
        },
    }
    path = "/api/v1/namespaces/default/persistentvolumeclaims?fieldValidation="
    assert call(kube, "POST", path + "Strict", claim).status_code == 400
    assert call(kube, "POST", path + "Ignore", claim).status_code == 201
    stored = kube.get_object("persistentvolumeclaims", "default", "c")
    assert stored is not None
    assert "gid" not in stored["spec"] and "heketiVolume" not in stored["metadata"]


SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  labels: {{a: b}}
spec:
  selector: {{app: web}}
  ports:
  - name: http
    port: 80{extra}
  - name: https
    port: {port}
"""


@needs_kubectl
def test_kubectl_apply_default_validation_and_reapply(kubectl, kube: KubeSandbox, tmp_path: Path):
    f = tmp_path / "svc.yaml"
    f.write_text(SERVICE.format(port=443, extra=""))
    assert "service/web created" in kubectl("apply", "-f", str(f))
    f.write_text(SERVICE.format(port=8443, extra=""))
    assert "service/web configured" in kubectl("apply", "-f", str(f))
    svc = kube.get_object("services", "default", "web")
    assert svc is not None
    assert [(p["name"], p["port"]) for p in svc["spec"]["ports"]] == [
        ("http", 80),
        ("https", 8443),
    ]
    assert "unchanged" in kubectl("apply", "-f", str(f))
    f.write_text(SERVICE.format(port=8443, extra="\n    bogus: 1"))
    for flags in ([], ["--validate=strict"]):
        out = kubectl("apply", "-f", str(f), *flags, ok=False)
        assert 'strict decoding error: unknown field "spec.ports[0].bogus"' in out
    out = kubectl("apply", "-f", str(f), "--validate=warn")
    assert 'Warning: unknown field "spec.ports[0].bogus"' in out
    # no client-side fallback was needed: no /openapi/v2 request
    assert not [r for r in kube.request_log if r.path.startswith("/openapi/v2")]


@needs_kubectl
def test_kubectl_apply_k_manifests(kubectl, kube: KubeSandbox) -> None:
    out = kubectl("apply", "-k", str(REPO / "manifests"))
    assert "deployment.apps/heketi-provisioner created" in out
    assert "clusterrole.rbac.authorization.k8s.io/heketi-provisioner created" in out
    out = kubectl("apply", "-k", str(REPO / "manifests"))
    assert "created" not in out and "configured" not in out
    assert kube.get_object("serviceaccounts", "heketi-provisioner", "heketi-provisioner")

"""PV, Endpoints and Service bodies field by field; names; reading a PV for delete."""

from __future__ import annotations

import copy
import re
from typing import Any

import kubernetes_validate
import pytest

from provisioner.controller.contract import pv_name
from provisioner.gluster import annotations as ann
from provisioner.gluster.objects import (
    DeleteInfo,
    build_endpoints,
    build_pv,
    build_service,
    delete_info,
    endpoints_name,
    endpoints_of,
    heketi_volume_name,
    pvc_label_value,
)
from provisioner.gluster.parameters import GlusterClassParameters, parse_class_parameters

UID = "0b6f6f3e-6c3a-4f39-9a34-2f1e1d2c3b4a"
VOLUME_ID = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
HEKETI_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
URL = "http://heketi.storage:8080"


def make_claim(uid: str = UID, name: str = "data", namespace: str = "app") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace, "uid": uid, "resourceVersion": "42"},
        "spec": {
            "accessModes": ["ReadWriteMany", "ReadOnlyMany"],
            "resources": {"requests": {"storage": "1500M"}},
            "storageClassName": "gold",
        },
    }


CLASS = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "gold"},
    "provisioner": "gluster.org/heketi",
    "reclaimPolicy": "Retain",
    "mountOptions": ["log-level=ERROR", "backup-volfile-servers=10.0.0.2"],
}


def make_pv(params: GlusterClassParameters | None = None, **overrides: Any) -> dict[str, Any]:
    params = params or parse_class_parameters({"resturl": URL, "restuser": "admin"})
    kwargs: dict[str, Any] = {
        "claim": make_claim(),
        "storage_class": CLASS,
        "params": params,
        "provisioner_name": "gluster.org/heketi",
        "volume_id": VOLUME_ID,
        "volume_name": f"pvc-{UID}",
        "size_gib": 2,
        "gid": 2001,
        "endpoints_name": f"glusterfs-dynamic-{UID}",
        "resturl": URL,
        "secret_namespace": "storage",
        "secret_name": "heketi-secret",
        "rest_user": "admin",
    }
    kwargs.update(overrides)
    return build_pv(**kwargs)


# --- names ---------------------------------------------------------------------


def test_pv_and_endpoints_names() -> None:
    assert pv_name(UID) == f"pvc-{UID}"
    assert endpoints_name("glusterfs-dynamic", UID) == f"glusterfs-dynamic-{UID}"
    assert len(endpoints_name("a" * 26, UID)) == 63


def test_heketi_name_without_prefix_equals_pv_name() -> None:
    params = parse_class_parameters({"resturl": URL})
    assert heketi_volume_name(params, make_claim()) == pv_name(UID)


def test_heketi_name_with_prefix() -> None:
    params = parse_class_parameters({"resturl": URL, "volumenameprefix": "dept-dev"})
    name = heketi_volume_name(params, make_claim(name="db.data", namespace="team-a"))
    assert name == f"dept-dev_team-a_db-data_{UID}"


@pytest.mark.parametrize("prefix", [None, "p", "dept-1"])
@pytest.mark.parametrize(
    ("name", "namespace", "uid"),
    [
        ("data", "app", UID),
        ("a.b.c", "x-y", UID),
        ("x" * 253, "n" * 63, "ffffffff-0000-1111-2222-333333333333"),
        ("weird name/ü", "ns:1", "uid with spaces"),
    ],
)
def test_heketi_name_always_valid_and_stable(
    prefix: str | None, name: str, namespace: str, uid: str
) -> None:
    params = parse_class_parameters(
        {"resturl": URL} | ({"volumenameprefix": prefix} if prefix else {})
    )
    claim = make_claim(uid=uid, name=name, namespace=namespace)
    first = heketi_volume_name(params, claim)
    assert HEKETI_NAME.match(first)
    assert heketi_volume_name(params, copy.deepcopy(claim)) == first


@pytest.mark.parametrize("prefix", [None, "p"])
def test_heketi_name_differs_by_uid(prefix: str | None) -> None:
    params = parse_class_parameters(
        {"resturl": URL} | ({"volumenameprefix": prefix} if prefix else {})
    )
    uids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(50)]
    names = {heketi_volume_name(params, make_claim(uid=uid)) for uid in uids}
    assert len(names) == 50


def test_heketi_name_needs_a_uid() -> None:
    claim = make_claim()
    del claim["metadata"]["uid"]
    with pytest.raises(ValueError, match="uid"):
        heketi_volume_name(parse_class_parameters({"resturl": URL}), claim)


def test_label_value_truncation() -> None:
    assert pvc_label_value("data") == "data"
    long = "a" * 62 + ".b" + "c" * 100
    assert pvc_label_value(long) == "a" * 62
    assert len(pvc_label_value("x" * 253)) == 63


# --- Endpoints and Service ---------------------------------------------------------


def test_endpoints_body() -> None:
    body = build_endpoints(
        claim=make_claim(),
        name="ep",
        ips=["10.0.0.10", "10.0.0.9", "10.0.0.10", "fd00::1", "10.0.0.2"],
    )
    assert body == {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": "ep",
            "namespace": "app",
            "labels": {"gluster.kubernetes.io/provisioned-for-pvc": "data"},
        },
        "subsets": [
            {
                "addresses": [
                    {"ip": "10.0.0.2"},
                    {"ip": "10.0.0.9"},
                    {"ip": "10.0.0.10"},
                    {"ip": "fd00::1"},
                ],
                "ports": [{"port": 1, "protocol": "TCP"}],
            }
        ],
    }
    kubernetes_validate.validate(body, "1.25", strict=True)


def test_endpoints_keyword_styles_build_the_same_body() -> None:
    by_claim = build_endpoints(claim=make_claim(), name="ep", ips=["10.0.0.1"])
    by_names = build_endpoints(name="ep", namespace="app", claim_name="data", hosts=["10.0.0.1"])
    assert by_claim == by_names


@pytest.mark.parametrize(
    ("annotations", "source", "claim_ref", "expected"),
    [
        ({ann.ANN_ENDPOINTS_NAME: "ep"}, {"endpoints": "old"}, {"namespace": "app"}, ("app", "ep")),
        ({}, {"endpoints": "ep", "endpointsNamespace": "gl"}, {"namespace": "app"}, ("gl", "ep")),
        ({}, {"endpoints": "ep"}, {"namespace": "app"}, ("app", "ep")),
        ({}, {"endpoints": "ep"}, {}, None),
        ({}, {}, {"namespace": "app"}, None),
    ],
)
def test_the_endpoints_a_pv_names(
    annotations: dict[str, str],
    source: dict[str, str],
    claim_ref: dict[str, str],
    expected: tuple[str, str] | None,
) -> None:
    pv = {
        "metadata": {"name": "pvc-1", "annotations": annotations},
        "spec": {"glusterfs": source, "claimRef": claim_ref},
    }
    assert endpoints_of(pv) == expected


def test_endpoints_need_addresses() -> None:
    with pytest.raises(ValueError, match="addresses"):
        build_endpoints(claim=make_claim(), name="ep", ips=[])


def test_service_body() -> None:
    body = build_service(claim=make_claim(), name="ep")
    assert body == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "ep",
            "namespace": "app",
            "labels": {"gluster.kubernetes.io/provisioned-for-pvc": "data"},
        },
        "spec": {"ports": [{"port": 1, "protocol": "TCP", "targetPort": 1}]},
    }
    assert "selector" not in body["spec"]
    assert build_service(name="ep", namespace="app", claim_name="data") == body
    kubernetes_validate.validate(body, "1.25", strict=True)


# --- PV ------------------------------------------------------------------------------


def test_pv_body_field_by_field() -> None:
    pv = make_pv()
    assert pv["apiVersion"] == "v1" and pv["kind"] == "PersistentVolume"
    assert pv["metadata"]["name"] == f"pvc-{UID}"
    assert pv["metadata"]["finalizers"] == ["external-provisioner.volume.kubernetes.io/finalizer"]
    assert pv["metadata"]["annotations"] == {
        "pv.beta.kubernetes.io/gid": "2001",
        "gluster.kubernetes.io/heketi-volume-id": VOLUME_ID,
        "gluster.org/type": "file",
        "kubernetes.io/createdby": "heketi-dynamic-provisioner",
        "Description": "Gluster-Internal: Dynamically provisioned PV",
        "pv.kubernetes.io/provisioned-by": "gluster.org/heketi",
        ann.ANN_RESTURL: URL,
        ann.ANN_RESTUSER: "admin",
        ann.ANN_SECRET_NAMESPACE: "storage",
        ann.ANN_SECRET_NAME: "heketi-secret",
        ann.ANN_ENDPOINTS_NAME: f"glusterfs-dynamic-{UID}",
    }
    spec = pv["spec"]
    assert spec["capacity"] == {"storage": "2Gi"}
    assert spec["accessModes"] == ["ReadWriteMany", "ReadOnlyMany"]
    assert spec["volumeMode"] == "Filesystem"
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["mountOptions"] == ["log-level=ERROR", "backup-volfile-servers=10.0.0.2"]
    assert spec["storageClassName"] == "gold"
    assert spec["claimRef"] == {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "namespace": "app",
        "name": "data",
        "uid": UID,
    }
    assert spec["glusterfs"] == {
        "endpoints": f"glusterfs-dynamic-{UID}",
        "endpointsNamespace": "app",
        "path": f"pvc-{UID}",
        "readOnly": False,
    }
    assert set(spec) == {
        "capacity", "accessModes", "volumeMode", "persistentVolumeReclaimPolicy",
        "mountOptions", "storageClassName", "claimRef", "glusterfs",
    }  # fmt: skip
    kubernetes_validate.validate(pv, "1.25", strict=True)


def test_pv_defaults_and_optional_annotations() -> None:
    storage_class = {"metadata": {"name": "plain"}, "provisioner": "x"}
    params = parse_class_parameters({"resturl": URL})
    pv = make_pv(
        params,
        storage_class=storage_class,
        secret_namespace=None,
        secret_name=None,
        rest_user=None,
    )
    annotations = pv["metadata"]["annotations"]
    assert ann.ANN_RESTUSER not in annotations
    assert ann.ANN_SECRET_NAMESPACE not in annotations and ann.ANN_SECRET_NAME not in annotations
    assert annotations[ann.ANN_RESTURL] == URL
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete"
    assert "mountOptions" not in pv["spec"]
    kubernetes_validate.validate(pv, "1.25", strict=True)


def test_no_restuser_annotation_when_auth_is_off() -> None:
    params = parse_class_parameters({"resturl": URL, "restauthenabled": "false"})
    pv = make_pv(params, rest_user="admin", secret_namespace=None, secret_name=None)
    assert ann.ANN_RESTUSER not in pv["metadata"]["annotations"]


def test_pv_never_carries_the_key() -> None:
    params = parse_class_parameters({"resturl": URL, "restuser": "admin", "restuserkey": "K3y!"})
    assert "K3y!" not in repr(make_pv(params, secret_namespace=None, secret_name=None))


def test_validation_catches_a_bad_body() -> None:
    pv = make_pv()
    pv["spec"]["glusterfs"]["bogus"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pv, "1.25", strict=True)


# --- delete_info --------------------------------------------------------------------


def test_delete_info_round_trip() -> None:
    info = delete_info(make_pv())
    assert info == DeleteInfo(
        volume_id=VOLUME_ID,
        volume_name=f"pvc-{UID}",
        rest_url=URL,
        rest_user="admin",
        secret_namespace="storage",
        secret_name="heketi-secret",
        endpoints_name=f"glusterfs-dynamic-{UID}",
        endpoints_namespace="app",
        gid=2001,
        class_name="gold",
        claim_uid=UID,
        has_own_annotations=True,
    )


def in_tree_pv(**annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"pvc-{UID}",
            "annotations": {
                "pv.beta.kubernetes.io/gid": "2000",
                "pv.kubernetes.io/provisioned-by": "kubernetes.io/glusterfs",
                **annotations,
            },
        },
        "spec": {
            "storageClassName": "legacy",
            "claimRef": {"namespace": "app", "name": "data", "uid": UID},
            "glusterfs": {"endpoints": f"glusterfs-dynamic-{UID}", "path": f"vol_{VOLUME_ID}"},
        },
    }


def test_delete_info_for_in_tree_pv_uses_the_path() -> None:
    info = delete_info(in_tree_pv())
    assert info.volume_id == VOLUME_ID
    assert info.has_own_annotations is False
    assert info.rest_url is None and info.secret_name is None
    assert info.endpoints_name == f"glusterfs-dynamic-{UID}"
    assert info.endpoints_namespace == "app"  # no endpointsNamespace: the claim's namespace
    assert (info.gid, info.class_name) == (2000, "legacy")


def test_delete_info_prefers_the_volume_id_annotation() -> None:
    other = "f" * 32
    pv = in_tree_pv(**{"gluster.kubernetes.io/heketi-volume-id": other})
    assert delete_info(pv).volume_id == other


@pytest.mark.parametrize("path", ["myprefix_app_data_x", "vol_notanid", "vol_", ""])
def test_delete_info_without_a_readable_id(path: str) -> None:
    pv = in_tree_pv()
    pv["spec"]["glusterfs"]["path"] = path
    assert delete_info(pv).volume_id is None


def test_delete_info_of_an_empty_object() -> None:
    info = delete_info({})
    assert info.volume_id is None and info.has_own_annotations is False and info.gid is None

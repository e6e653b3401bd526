"""Resize and clone against the real peers.

* The API sandbox's claim rules are held to the real kube-apiserver (1.25.16 and the
  current release): a resize of a class without ``allowVolumeExpansion`` refused by
  admission (403), an unbound claim's request refused by validation, shrinking
  refused, ``status`` a subresource both ways. The same requests go to a KubeSandbox
  speaking the same release, and the answers must agree.
* On the current release (where kube-controller-manager has no glusterfs plugin and
  leaves the resize to an external resizer), our controller as its ServiceAccount
  under the RBAC of manifests/ grows a claim 1Gi -> 3Gi through the real Heketi, and
  ``kubectl get pvc`` shows 3Gi; the real authorizer judges every call.
* A clone binds with its own volume on the real API server and binder. Heketi v10.3.0's
  mock executor crashes on a clone (a panic in the clone's Exec:
  updateCloneBrickPaths, index out of range), so the Heketi behind this one is the
  simulator; see provisioner/sandbox/heketi/README.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from provisioner.sandbox.heketi import HeketiSimulator
from provisioner.sandbox.kube import KubeSandbox
from testbeds.harness.controller import kubectl, make_claim, make_namespace, make_storage_class
from testbeds.peers import HEKETI_ADMIN_KEY, RealHeketi, RealKube, wait_for

from .conftest import ControllerFactory

pytestmark = pytest.mark.timeout(300)

WAIT = 60.0
MERGE = {"Content-Type": "application/merge-patch+json"}
VOLUME_ID = "gluster.kubernetes.io/heketi-volume-id"


# -- the same requests to the real API server and to the sandbox ------------------------


class Api:
    def __init__(self, base: str, session: requests.Session) -> None:
        self.base = base
        self.session = session

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = MERGE if method == "PATCH" else {}
        r = self.session.request(method, self.base + path, json=body, headers=headers, timeout=30)
        return r.status_code, r.json() if r.content else None


def _claims(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/persistentvolumeclaims" + (f"/{name}" if name else "")


def _grow(size: str) -> dict[str, Any]:
    return {"spec": {"resources": {"requests": {"storage": size}}}}


def _first_line(status: Any) -> str:
    return str((status or {}).get("message", "")).split("\n", 1)[0]


def admission_script(api: Api, tag: str) -> dict[str, Any]:
    """Two classes (one expandable), two static PVs, a claim bound to each."""
    ns = f"resize-{tag}"
    api.call("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    out: dict[str, Any] = {}
    for name, grow in (("fixed", False), ("grow", True)):
        cls = f"{tag}-{name}"
        body: dict[str, Any] = {
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": cls}, "provisioner": "example.com/none",
        }  # fmt: skip
        if grow:
            body["allowVolumeExpansion"] = True
        api.call("POST", "/apis/storage.k8s.io/v1/storageclasses", body)
        api.call("POST", "/api/v1/persistentvolumes", {
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": f"{cls}-pv"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": cls, "nfs": {"server": "192.0.2.1", "path": "/x"}},
        })  # fmt: skip
        api.call("POST", _claims(ns), {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": cls,
                     "resources": {"requests": {"storage": "1Gi"}}},
        })  # fmt: skip

        def bound(claim: str = name) -> bool:
            _, got = api.call("GET", _claims(ns, claim))
            return (got.get("status") or {}).get("phase") == "Bound"

        wait_for(bound, WAIT, f"{tag} claim {name} Bound")
    # A claim no PV fits (5Gi > 1Gi) stays Pending: its request cannot change.
    api.call("POST", _claims(ns), {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "pending"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": f"{tag}-grow",
                 "resources": {"requests": {"storage": "5Gi"}}},
    })  # fmt: skip
    code, status = api.call("PATCH", _claims(ns, "pending"), _grow("6Gi"))
    out["resize-unbound"] = (code, _first_line(status))
    code, status = api.call("PATCH", _claims(ns, "fixed"), _grow("2Gi"))
    out["resize-not-allowed"] = (code, status.get("reason"), _first_line(status))
    code, _ = api.call("PATCH", _claims(ns, "grow"), _grow("2Gi"))
    out["resize-allowed"] = code
    code, status = api.call("PATCH", _claims(ns, "grow"), _grow("500Mi"))
    out["shrink"] = (code, _first_line(status))
    code, got = api.call("PATCH", _claims(ns, "grow"), {"status": {"capacity": {"storage": "9Gi"}}})
    out["status-through-main"] = (code, got["status"]["capacity"])
    code, got = api.call(
        "PATCH", _claims(ns, "grow") + "/status",
        {"spec": {"resources": {"requests": {"storage": "9Gi"}}},
         "status": {"capacity": {"storage": "3Gi"}}},
    )  # fmt: skip
    out["spec-through-status"] = (code, got["spec"]["resources"], got["status"]["capacity"])
    return out


@pytest.fixture
def twin_sandbox(real_kube: RealKube) -> Iterator[Api]:
    version = real_kube.server_version().lstrip("v").split("-")[0].split("+")[0]
    with KubeSandbox(version=version) as sandbox:
        session = requests.Session()
        session.trust_env = False
        assert sandbox.url is not None
        yield Api(sandbox.url, session)


def test_sandbox_claim_rules_match_the_real_api_server(
    real_kube: RealKube, twin_sandbox: Api
) -> None:
    real = admission_script(Api(real_kube.server, real_kube.session), "real")
    twin = admission_script(twin_sandbox, "real")
    assert real["resize-not-allowed"][0] == 403, real
    assert real["spec-through-status"][1] == {"requests": {"storage": "2Gi"}}, real
    assert twin == real


# -- our controller, the real binder, the real authorizer -----------------------------------


def _current_only(kube: RealKube) -> None:
    if kube.version == "1.25":
        pytest.skip("1.25's kube-controller-manager grows glusterfs PVs itself")


def _claim(kube: RealKube, ns: str, name: str) -> dict[str, Any]:
    return dict(kube.get(_claims(ns, name)))


def _bound(kube: RealKube, ns: str, name: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        got = _claim(kube, ns, name)
        ok = got["status"].get("phase") == "Bound" and got["spec"].get("volumeName")
        return got if ok else None

    return wait_for(check, WAIT, f"claim {ns}/{name} Bound")


def _heketi_ops(controller: Any) -> dict[str, float]:
    """The controller's own count of Heketi requests by operation (all statuses)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(controller.metrics()):
        for sample in family.samples:
            if sample.name == "heketi_provisioner_heketi_requests_total":
                op = sample.labels["operation"]
                out[op] = out.get(op, 0.0) + sample.value
    return out


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    return {k: int(v - before.get(k, 0.0)) for k, v in after.items() if v != before.get(k, 0.0)}


def test_claim_grows_1_to_3_gib_and_kubectl_shows_it(
    real_kube: RealKube, kube_heketi: RealHeketi, controller_factory: ControllerFactory
) -> None:
    _current_only(real_kube)
    kube, heketi, ns = real_kube, kube_heketi, "grow-real"
    make_namespace(kube, ns)
    make_storage_class(kube, "grow-real", heketi)
    kube.request(
        "PATCH", "/apis/storage.k8s.io/v1/storageclasses/grow-real",
        {"allowVolumeExpansion": True}, headers=MERGE,
    )  # fmt: skip
    controller = controller_factory(kube, extra_args=["--assume-glusterfs-plugin"])
    make_claim(kube, ns, "data", "grow-real", size="1Gi")
    claim = _bound(kube, ns, "data")
    pv_name = claim["spec"]["volumeName"]
    volume_id = kube.get(f"/api/v1/persistentvolumes/{pv_name}")["metadata"]["annotations"][
        VOLUME_ID
    ]
    before = _heketi_ops(controller)

    kube.request("PATCH", _claims(ns, "data"), _grow("3Gi"), headers=MERGE)

    def shown() -> str | None:
        out = kubectl(kube, "get", "pvc", "-n", ns, "data", "--no-headers").stdout
        return out if " 3Gi " in f" {out} " else None

    line = wait_for(shown, WAIT, "kubectl get pvc to show 3Gi")
    assert "Bound" in line and pv_name in line, line
    pv = kube.get(f"/api/v1/persistentvolumes/{pv_name}")
    assert pv["spec"]["capacity"]["storage"] == "3Gi"
    assert heketi.get(f"/volumes/{volume_id}")["size"] == 3  # the real Heketi's answer
    fresh = _claim(kube, ns, "data")
    types = {c.get("type") for c in fresh["status"].get("conditions") or ()}
    assert not types & {"Resizing", "FileSystemResizePending"}, fresh["status"]
    reasons = {
        e["reason"]
        for e in kube.get(f"/api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.name=data")[
            "items"
        ]
    }
    assert {"Resizing", "VolumeResizeSuccessful"} <= reasons, reasons
    ops = _delta(_heketi_ops(controller), before)
    print(f"\nFIGURES real resize 1Gi->3Gi, Heketi requests by operation: {ops}")
    assert ops.get("POST /volumes/{id}/expand") == 1, ops


@pytest.fixture
def sim_heketi() -> Iterator[HeketiSimulator]:
    with HeketiSimulator(admin_key=HEKETI_ADMIN_KEY, seed=5) as sim:
        yield sim


def test_clone_binds_with_its_own_volume(
    real_kube: RealKube, sim_heketi: HeketiSimulator, controller_factory: ControllerFactory
) -> None:
    kube, ns = real_kube, "clone-real"
    make_namespace(kube, ns)
    as_heketi = type("SimAsPeer", (), {"url": sim_heketi.url, "admin_key": HEKETI_ADMIN_KEY})
    make_storage_class(kube, "clone-real", as_heketi)  # type: ignore[arg-type]
    args = [] if kube.version == "1.25" else ["--assume-glusterfs-plugin"]
    controller_factory(kube, extra_args=args)
    make_claim(kube, ns, "source", "clone-real", size="1Gi")
    source = _bound(kube, ns, "source")

    body = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "copy"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "clone-real",
                 "resources": {"requests": {"storage": "2Gi"}},
                 "dataSource": {"kind": "PersistentVolumeClaim", "name": "source"}},
    }  # fmt: skip
    kube.create(_claims(ns), body)
    copy = _bound(kube, ns, "copy")

    source_pv = kube.get(f"/api/v1/persistentvolumes/{source['spec']['volumeName']}")
    pv = kube.get(f"/api/v1/persistentvolumes/{copy['spec']['volumeName']}")
    assert pv["metadata"]["name"] == f"pvc-{copy['metadata']['uid']}"
    own, theirs = pv["metadata"]["annotations"], source_pv["metadata"]["annotations"]
    assert own[VOLUME_ID] != theirs[VOLUME_ID]
    assert own["heketi-provisioner.gluster.org/clone-of"] == theirs[VOLUME_ID]
    assert own["pv.beta.kubernetes.io/gid"] == theirs["pv.beta.kubernetes.io/gid"]
    assert copy["status"]["capacity"]["storage"] == "2Gi"
    names = {v["name"] for v in sim_heketi.volumes()}
    assert f"pvc-{copy['metadata']['uid']}" in names
    ep = f"/api/v1/namespaces/{ns}/endpoints/glusterfs-dynamic-{copy['metadata']['uid']}"
    assert kube.get(ep)["subsets"]


def test_on_1_25_kube_controller_manager_grows_the_volume_itself(
    real_kube: RealKube, kube_heketi: RealHeketi, controller_factory: ControllerFactory
) -> None:
    """Why the controller leaves resizes alone up to 1.25: kube-controller-manager's
    in-tree glusterfs plugin grows our PVs itself, with the class's parameters."""
    if real_kube.version != "1.25":
        pytest.skip("the in-tree glusterfs plugin exists up to 1.25 only")
    kube, heketi, ns = real_kube, kube_heketi, "grow-intree"
    make_namespace(kube, ns)
    make_storage_class(kube, "grow-intree", heketi)
    kube.request(
        "PATCH", "/apis/storage.k8s.io/v1/storageclasses/grow-intree",
        {"allowVolumeExpansion": True}, headers=MERGE,
    )  # fmt: skip
    controller = controller_factory(kube)
    make_claim(kube, ns, "data", "grow-intree", size="1Gi")
    claim = _bound(kube, ns, "data")
    pv_name = claim["spec"]["volumeName"]
    volume_id = kube.get(f"/api/v1/persistentvolumes/{pv_name}")["metadata"]["annotations"][
        VOLUME_ID
    ]
    before = _heketi_ops(controller)

    kube.request("PATCH", _claims(ns, "data"), _grow("2Gi"), headers=MERGE)

    wait_for(
        lambda: heketi.get(f"/volumes/{volume_id}")["size"] == 2, WAIT, "Heketi volume at 2 GiB"
    )
    wait_for(
        lambda: _claim(kube, ns, "data")["status"].get("capacity", {}).get("storage") == "2Gi",
        WAIT,
        "the claim at 2Gi",
    )
    assert _delta(_heketi_ops(controller), before).get("POST /volumes/{id}/expand") is None

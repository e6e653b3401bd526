"""Our controller, as its own process and as ServiceAccount heketi-provisioner under the
RBAC of manifests/, against real kube-apiserver + kube-controller-manager (1.25.16 and
the current release) and a real Heketi (mock executor): the real PV binder binds, the
real authorizer judges every call (``controller_factory`` fails a test on any 403 in
a controller log), and Heketi is asked directly what exists.

Tests of one Kubernetes version run in file order; ``test_audit_finds_no_problems``
is last on purpose: it audits what the flows before it left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from heketi_client import Durability, HeketiClient, VolumeCreateRequest
from testbeds.harness.controller import (
    CONTROLLER_NAMESPACE,
    PROVISIONER_NAME,
    ControllerProcess,
    make_claim,
    make_namespace,
    make_storage_class,
    start_controller,
)
from testbeds.peers import RealHeketi, RealKube, wait_for

from .conftest import ControllerFactory

pytestmark = pytest.mark.timeout(240)

FINALIZER = "external-provisioner.volume.kubernetes.io/finalizer"
INTENT_LABEL = "heketi-provisioner.gluster.org/intent"
STORAGE_IPS = ["192.0.2.11", "192.0.2.12", "192.0.2.13"]  # peers.default_topology
SWEEP = {"orphan_sweep_period": 1.0, "orphan_grace_seconds": 1.0}
SWEEPS_METRIC = "heketi_provisioner_orphan_sweeps_total"
WAIT = 60.0
RECORDS = f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}/configmaps"


# -- helpers ---------------------------------------------------------------------------


def gate_args(kube: RealKube) -> list[str]:
    """On 1.26+ the controller provisions glusterfs PVs only when told to."""
    return [] if kube.version == "1.25" else ["--assume-glusterfs-plugin"]


def claim_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/persistentvolumeclaims" + (f"/{name}" if name else "")


def get_or_none(kube: RealKube, path: str) -> Any:
    r = kube.request("GET", path, ok=(200, 404))
    return None if r.get("kind") == "Status" else r


def wait_bound(kube: RealKube, ns: str, name: str, timeout: float = WAIT) -> dict[str, Any]:
    def bound() -> dict[str, Any] | None:
        pvc: dict[str, Any] = kube.get(claim_path(ns, name))
        if pvc["status"].get("phase") == "Bound" and pvc["spec"].get("volumeName"):
            return pvc
        return None

    return wait_for(bound, timeout, f"claim {ns}/{name} Bound")


def wait_gone(kube: RealKube, path: str, timeout: float = WAIT) -> None:
    wait_for(lambda: get_or_none(kube, path) is None, timeout, f"{path} gone")


def events_of(kube: RealKube, ns: str, uid: str) -> list[dict[str, Any]]:
    out = kube.get(f"/api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.uid={uid}")
    return list(out["items"])


def wait_event(
    kube: RealKube, ns: str, uid: str, reason: str, *, contains: str = "", type_: str = ""
) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        for e in events_of(kube, ns, uid):
            if (
                e.get("reason") == reason
                and contains in (e.get("message") or "")
                and (not type_ or e.get("type") == type_)
            ):
                return e
        return None

    return wait_for(found, WAIT, f"{type_ or 'an'} event {reason} mentioning {contains!r}")


def heketi_volume(heketi: RealHeketi, volume_id: str) -> dict[str, Any] | None:
    """The real Heketi's own answer: the volume, or None on its 404."""
    r = heketi.request("GET", f"/volumes/{volume_id}")
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return dict(r.json())


def heketi_names(heketi: RealHeketi) -> set[str]:
    return {heketi.get(f"/volumes/{v}")["name"] for v in heketi.get("/volumes")["volumes"]}


def delete(kube: RealKube, path: str) -> None:
    kube.request("DELETE", path, ok=(200, 202, 404))


@contextlib.contextmanager
def watch_records(kube: RealKube) -> Iterator[list[tuple[str, str]]]:
    """(event type, ConfigMap name) of every intent record change in the controller's
    namespace while the block runs (a watch, so short-lived records are seen too).

    The watch is renewed every second from the last resourceVersion seen, so that
    stopping never closes a socket under a reading thread (which can hang)."""
    base = f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}/configmaps?labelSelector={INTENT_LABEL}"
    rv = kube.get(base)["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        nonlocal rv
        with requests.Session() as session:
            session.trust_env = False
            session.verify = kube.session.verify
            session.cert = kube.session.cert
            while not stop.is_set():
                url = f"{kube.server}{base}&watch=1&resourceVersion={rv}&timeoutSeconds=1"
                try:
                    with session.get(url, stream=True, timeout=(10, 30)) as r:
                        r.raise_for_status()
                        for line in r.iter_lines():
                            if line:
                                ev = json.loads(line)
                                if ev["type"] == "ERROR":
                                    raise RuntimeError(f"watch: {ev['object']}")
                                meta = ev["object"]["metadata"]
                                rv = meta.get("resourceVersion", rv)
                                seen.append((ev["type"], meta.get("name", "")))
                except Exception as e:  # reported by the caller
                    errors.append(e)
                    return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(40)
    if errors:
        raise errors[0]


# -- the 403 detector itself ---------------------------------------------------------------


def test_forbidden_call_shows_in_the_log(real_kube: RealKube, tmp_path: Path) -> None:
    """What ``controller_factory`` relies on: a call the RBAC does not grant is
    refused by the real authorizer and ``forbidden_lines()`` finds it in the log (a
    controller told to keep its records in a namespace its Role does not cover)."""
    c = start_controller(
        real_kube, log_path=tmp_path / "refused.log", namespace="not-granted", wait_ready=False
    )
    try:
        lines = wait_for(c.forbidden_lines, WAIT, "a 403 in the controller log")
    finally:
        c.kill()
    assert any("configmaps" in line and "not-granted" in line for line in lines), lines


# -- provision, bind, delete, retain -----------------------------------------------------


def test_provision_delete_and_retain(
    real_kube: RealKube, kube_heketi: RealHeketi, controller_factory: ControllerFactory
) -> None:
    """A claim is provisioned (PV, Endpoints, Service in the in-tree shape, intent
    record), bound by the real binder; on delete the Heketi volume, the companions,
    the PV and the record go. Under Retain the PV is Released and the volume kept."""
    kube, heketi, ns = real_kube, kube_heketi, "flow-provision"
    make_namespace(kube, ns)
    make_storage_class(kube, "flow-delete", heketi, reclaim_policy="Delete")
    kube.request(
        "PATCH",
        "/apis/storage.k8s.io/v1/storageclasses/flow-delete",
        {"mountOptions": ["log-level=ERROR"]},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    make_storage_class(kube, "flow-retain", heketi, reclaim_policy="Retain")
    controller = controller_factory(kube, extra_args=gate_args(kube), **SWEEP)

    with watch_records(kube) as records:
        claim = make_claim(
            kube, ns, "data", "flow-delete", size="1500Mi", access_modes=["ReadWriteMany"]
        )
        kept = make_claim(kube, ns, "kept", "flow-retain")
        uid, kept_uid = claim["metadata"]["uid"], kept["metadata"]["uid"]
        pvc = wait_bound(kube, ns, "data")
        wait_bound(kube, ns, "kept")
        # the records go once their PVs exist (at a sweep)
        for u in (uid, kept_uid):
            wait_gone(
                kube, f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}/configmaps/heketi-intent-{u}"
            )
    assert ("ADDED", f"heketi-intent-{uid}") in records, records
    assert ("DELETED", f"heketi-intent-{uid}") in records, records

    # -- the PV, in the in-tree shape
    pv_name = f"pvc-{uid}"
    assert pvc["spec"]["volumeName"] == pv_name
    pv = kube.get(f"/api/v1/persistentvolumes/{pv_name}")
    ann = pv["metadata"]["annotations"]
    volume_id = ann["gluster.kubernetes.io/heketi-volume-id"]
    assert ann["pv.kubernetes.io/provisioned-by"] == PROVISIONER_NAME
    assert ann["gluster.org/type"] == "file"
    assert ann["kubernetes.io/createdby"] == "heketi-dynamic-provisioner"
    gid = ann["pv.beta.kubernetes.io/gid"]
    assert gid.isdigit() and int(gid) >= 2000
    assert FINALIZER in pv["metadata"]["finalizers"]
    spec = pv["spec"]
    endpoints_name = f"glusterfs-dynamic-{uid}"
    assert spec["glusterfs"]["endpoints"] == endpoints_name
    assert spec["glusterfs"]["path"] == pv_name
    assert spec["glusterfs"].get("endpointsNamespace", ns) == ns
    assert spec["capacity"]["storage"] == "2Gi"
    assert spec["accessModes"] == ["ReadWriteMany"]
    assert spec["claimRef"]["uid"] == uid and spec["claimRef"]["name"] == "data"
    assert spec["persistentVolumeReclaimPolicy"] == "Delete"
    assert spec["storageClassName"] == "flow-delete"
    assert spec["mountOptions"] == ["log-level=ERROR"]
    assert pv["status"]["phase"] == "Bound"

    # -- the Heketi volume, asked of Heketi itself
    volume = heketi_volume(heketi, volume_id)
    assert volume is not None
    assert volume["name"] == pv_name and volume["size"] == 2
    assert volume["gid"] == int(gid)
    assert volume["durability"]["type"] == "replicate"
    assert volume["durability"]["replicate"]["replica"] == 3

    # -- Endpoints and selector-less Service, port 1
    ep = kube.get(f"/api/v1/namespaces/{ns}/endpoints/{endpoints_name}")
    ips = sorted(a["ip"] for s in ep["subsets"] for a in s["addresses"])
    assert ips == STORAGE_IPS
    assert [p["port"] for s in ep["subsets"] for p in s["ports"]] == [1] * len(ep["subsets"])
    svc = kube.get(f"/api/v1/namespaces/{ns}/services/{endpoints_name}")
    assert not svc["spec"].get("selector")
    assert [p["port"] for p in svc["spec"]["ports"]] == [1]
    labels = svc["metadata"].get("labels") or {}
    assert labels.get("gluster.kubernetes.io/provisioned-for-pvc") == "data"

    wait_event(kube, ns, uid, "ProvisioningSucceeded")
    assert controller.metric("controller_persistentvolumeclaim_provision_total") == 2

    # -- Retain: the claim goes, the PV is Released and the volume stays
    kept_pv = f"pvc-{kept_uid}"
    kept_volume_id = kube.get(f"/api/v1/persistentvolumes/{kept_pv}")["metadata"]["annotations"][
        "gluster.kubernetes.io/heketi-volume-id"
    ]
    delete(kube, claim_path(ns, "kept"))
    # -- Delete: everything goes
    delete(kube, claim_path(ns, "data"))
    wait_gone(kube, f"/api/v1/persistentvolumes/{pv_name}")
    assert heketi_volume(heketi, volume_id) is None
    wait_gone(kube, f"/api/v1/namespaces/{ns}/endpoints/{endpoints_name}")
    wait_gone(kube, f"/api/v1/namespaces/{ns}/services/{endpoints_name}")
    assert (
        get_or_none(
            kube, f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}/configmaps/heketi-intent-{uid}"
        )
        is None
    )
    assert controller.metric("controller_persistentvolume_delete_total") == 1

    wait_for(
        lambda: (
            kube.get(f"/api/v1/persistentvolumes/{kept_pv}")["status"].get("phase") == "Released"
        ),
        WAIT,
        "the Retain PV Released",
    )
    # The Delete PV, released after it, is gone: the controller has looked at both.
    assert heketi_volume(heketi, kept_volume_id) is not None
    assert controller.metric("controller_persistentvolume_delete_total") == 1


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        pytest.param({"volumetype": "replicate:x"}, "volumetype", id="volumetype"),
        pytest.param({"nosuchparameter": "1"}, "nosuchparameter", id="unknown-key"),
    ],
)
def test_bad_class_gets_event_and_no_volume(
    real_kube: RealKube,
    kube_heketi: RealHeketi,
    controller_factory: ControllerFactory,
    parameters: dict[str, str],
    named: str,
) -> None:
    kube, heketi = real_kube, kube_heketi
    ns, sc = f"flow-bad-{named}", f"flow-bad-{named}"
    make_storage_class(kube, sc, heketi, parameters=parameters)
    controller_factory(kube, extra_args=gate_args(kube))
    before = heketi_names(heketi)
    claim = make_claim(kube, ns, "data", sc)
    uid = claim["metadata"]["uid"]
    event = wait_event(kube, ns, uid, "ProvisioningFailed", contains=named, type_="Warning")
    assert heketi.admin_key not in event["message"]
    assert heketi_names(heketi) == before
    assert get_or_none(kube, f"/api/v1/persistentvolumes/pvc-{uid}") is None
    assert kube.get(claim_path(ns, "data"))["status"]["phase"] == "Pending"
    delete(kube, claim_path(ns, "data"))
    delete(kube, f"/apis/storage.k8s.io/v1/storageclasses/{sc}")


# -- WaitForFirstConsumer ------------------------------------------------------------------


def test_wait_for_first_consumer(
    real_kube: RealKube, kube_heketi: RealHeketi, controller_factory: ControllerFactory
) -> None:
    """Not provisioned until the scheduler's annotation names a node; then Bound."""
    kube, heketi, ns = real_kube, kube_heketi, "flow-wffc"
    make_storage_class(kube, "flow-wffc", heketi, binding_mode="WaitForFirstConsumer")
    make_storage_class(kube, "flow-now", heketi)
    controller_factory(kube, extra_args=gate_args(kube))
    waiting = make_claim(kube, ns, "later", "flow-wffc")
    uid = waiting["metadata"]["uid"]
    # The binder says it waits; a claim created after it, of an Immediate class, is
    # provisioned and bound: the controller has had its chance at the first one.
    wait_event(kube, ns, uid, "WaitForFirstConsumer")
    make_claim(kube, ns, "now", "flow-now")
    wait_bound(kube, ns, "now")
    assert kube.get(claim_path(ns, "later"))["status"]["phase"] == "Pending"
    assert get_or_none(kube, f"/api/v1/persistentvolumes/pvc-{uid}") is None
    assert f"pvc-{uid}" not in heketi_names(heketi)

    # What kube-scheduler does when it picks a node for the consuming pod.
    kube.request(
        "PATCH",
        claim_path(ns, "later"),
        {"metadata": {"annotations": {"volume.kubernetes.io/selected-node": "node-1"}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    pvc = wait_bound(kube, ns, "later")
    assert pvc["spec"]["volumeName"] == f"pvc-{uid}"
    assert f"pvc-{uid}" in heketi_names(heketi)


# -- leader election on real Leases ---------------------------------------------------------


def test_leader_killed_standby_takes_over(
    real_kube: RealKube, kube_heketi: RealHeketi, controller_factory: ControllerFactory
) -> None:
    kube, heketi, ns = real_kube, kube_heketi, "flow-leader"
    make_storage_class(kube, "flow-leader", heketi)
    lease_path = (
        f"/apis/coordination.k8s.io/v1/namespaces/{CONTROLLER_NAMESPACE}/leases/gluster.org-heketi"
    )
    args = [*gate_args(kube), "--leader-election-lease-duration=3"]
    replicas = {
        name: controller_factory(
            kube, leader_election=True, extra_args=args, env={"POD_NAME": name}
        )
        for name in ("replica-a", "replica-b")
    }

    def leader() -> ControllerProcess | None:
        leading = [c for c in replicas.values() if c.metric("heketi_provisioner_leader") == 1]
        return leading[0] if len(leading) == 1 else None

    first = wait_for(leader, WAIT, "exactly one leader")
    first_name = next(n for n, c in replicas.items() if c is first)
    holder = kube.get(lease_path)["spec"]["holderIdentity"]
    assert holder.startswith(f"{first_name}_"), holder

    first.kill()  # SIGKILL: the Lease is not released, it must expire
    other_name = next(n for n in replicas if n != first_name)
    other = replicas[other_name]
    claim = make_claim(kube, ns, "data", "flow-leader")
    other.wait_leader(timeout=WAIT)
    wait_bound(kube, ns, "data")
    assert other.metric("controller_persistentvolumeclaim_provision_total") == 1
    holder = kube.get(lease_path)["spec"]["holderIdentity"]
    assert holder.startswith(f"{other_name}_"), holder
    assert f"pvc-{claim['metadata']['uid']}" in heketi_names(heketi)


# -- while the controller is down; repairs ------------------------------------------------


def test_reclaim_after_restart_and_repair(
    real_kube: RealKube, kube_heketi: RealHeketi, controller_factory: ControllerFactory
) -> None:
    """Endpoints deleted by someone are written again; a claim deleted while no
    controller runs has its PV (Delete) and volume reclaimed at the next start."""
    kube, heketi, ns = real_kube, kube_heketi, "flow-restart"
    make_storage_class(kube, "flow-restart", heketi)
    first = controller_factory(kube, extra_args=gate_args(kube))
    gone = make_claim(kube, ns, "gone", "flow-restart")
    stays = make_claim(kube, ns, "stays", "flow-restart")
    wait_bound(kube, ns, "gone")
    wait_bound(kube, ns, "stays")

    ep_path = f"/api/v1/namespaces/{ns}/endpoints/glusterfs-dynamic-{stays['metadata']['uid']}"
    old = kube.get(ep_path)
    delete(kube, ep_path)

    def repaired() -> dict[str, Any] | None:
        ep = get_or_none(kube, ep_path)
        return ep if ep and ep["metadata"]["uid"] != old["metadata"]["uid"] else None

    ep = wait_for(repaired, WAIT, "Endpoints written again")
    assert sorted(a["ip"] for s in ep["subsets"] for a in s["addresses"]) == STORAGE_IPS

    uid = gone["metadata"]["uid"]
    pv_path = f"/api/v1/persistentvolumes/pvc-{uid}"
    volume_id = kube.get(pv_path)["metadata"]["annotations"][
        "gluster.kubernetes.io/heketi-volume-id"
    ]
    assert first.stop() == 0
    delete(kube, claim_path(ns, "gone"))
    wait_for(lambda: kube.get(pv_path)["status"].get("phase") == "Released", WAIT, "PV Released")
    assert heketi_volume(heketi, volume_id) is not None  # nobody ran to delete it

    controller_factory(kube, extra_args=gate_args(kube))
    wait_gone(kube, pv_path)
    assert heketi_volume(heketi, volume_id) is None
    wait_gone(kube, f"/api/v1/namespaces/{ns}/endpoints/glusterfs-dynamic-{uid}")
    wait_gone(kube, f"/api/v1/namespaces/{ns}/services/glusterfs-dynamic-{uid}")
    assert kube.get(claim_path(ns, "stays"))["status"]["phase"] == "Bound"


# -- the 1.26+ version gate ------------------------------------------------------------------


def test_version_gate(
    real_kube: RealKube, kube_heketi: RealHeketi, controller_factory: ControllerFactory
) -> None:
    """Without --assume-glusterfs-plugin, on 1.26+ a claim gets a Warning naming 1.26
    and nothing is created (on 1.25 the same start provisions: every test above)."""
    kube, heketi, ns = real_kube, kube_heketi, "flow-gate"
    if kube.version == "1.25":
        pytest.skip("1.25 kubelets mount glusterfs: no gate (the other tests run ungated)")
    make_storage_class(kube, "flow-gate", heketi)
    controller_factory(kube)
    before = heketi_names(heketi)
    claim = make_claim(kube, ns, "data", "flow-gate")
    uid = claim["metadata"]["uid"]
    event = wait_event(kube, ns, uid, "ProvisioningFailed", contains="1.26", type_="Warning")
    assert "--assume-glusterfs-plugin" in event["message"]
    assert heketi_names(heketi) == before
    assert get_or_none(kube, f"/api/v1/persistentvolumes/pvc-{uid}") is None
    assert get_or_none(kube, f"/api/v1/namespaces/{ns}/services/glusterfs-dynamic-{uid}") is None
    delete(kube, claim_path(ns, "data"))


# -- a tenant on the real authorizer -------------------------------------------------------

TENANT = "tenant-a"
INTENT_KEYS = "heketi-provisioner.gluster.org/"


def tenant_kubeconfig(kube: RealKube) -> tuple[Path, str]:
    """ServiceAccount tenant-a/tenant with a Role on tenant-a only (what a namespace
    'edit' user may do to these kinds); returns its kubeconfig and token."""
    path = kube.mint_serviceaccount_kubeconfig(TENANT, "tenant")
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "tenant", "namespace": TENANT},
        "rules": [
            {
                "apiGroups": [""],
                "resources": [
                    "services",
                    "endpoints",
                    "configmaps",
                    "secrets",
                    "persistentvolumeclaims",
                ],
                "verbs": ["create", "get", "list", "delete", "update"],
            }
        ],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "tenant", "namespace": TENANT},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": TENANT}],
    }
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{TENANT}"
    kube.request("POST", f"{rbac}/roles", role, ok=(201, 409))
    kube.request("POST", f"{rbac}/rolebindings", binding, ok=(201, 409))
    token = yaml.safe_load(path.read_text())["users"][0]["user"]["token"]
    return path, token


def test_tenant_cannot_steer_the_sweep(
    real_kube: RealKube, kube_heketi: RealHeketi, controller_factory: ControllerFactory
) -> None:
    """The security issue's attack, by a tenant on the real authorizer: a copy of its
    claim's Service carrying the legacy intent annotations that name an operator's
    Heketi volume. After 3 orphan sweeps the volume is still there; and the tenant
    cannot write an intent record where the controller keeps them (403)."""
    kube, heketi = real_kube, kube_heketi
    make_storage_class(kube, "flow-tenant", heketi)
    _, token = tenant_kubeconfig(kube)
    tenant = requests.Session()
    tenant.trust_env = False
    tenant.verify = str(kube.pki.ca)
    tenant.headers["Authorization"] = f"Bearer {token}"

    def as_tenant(method: str, path: str, body: Any = None) -> requests.Response:
        return tenant.request(method, kube.server + path, json=body, timeout=30)

    client = HeketiClient(heketi.url, user="admin", key=heketi.admin_key)
    operator = client.create_volume(
        VolumeCreateRequest(size=1, name="operator-archive", durability=Durability.replicate(3))
    )
    controller = controller_factory(kube, extra_args=gate_args(kube), **SWEEP)

    r = as_tenant(
        "POST",
        claim_path(TENANT),
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "mine"},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "flow-tenant",
                "resources": {"requests": {"storage": "1Gi"}},
            },
        },
    )
    assert r.status_code == 201, r.text
    own_uid = r.json()["metadata"]["uid"]
    wait_bound(kube, TENANT, "mine")
    r = as_tenant("GET", f"/api/v1/namespaces/{TENANT}/services/glusterfs-dynamic-{own_uid}")
    assert r.status_code == 200, r.text
    own = r.json()

    forged_uid = str(uuid.uuid4())
    annotations = dict(own["metadata"].get("annotations") or {})
    annotations.update(
        {
            f"{INTENT_KEYS}claim-uid": forged_uid,
            f"{INTENT_KEYS}claim-name": f"gone-{forged_uid[:8]}",
            f"{INTENT_KEYS}storage-class": "flow-tenant",
            f"{INTENT_KEYS}volume-name": operator.name,
            f"{INTENT_KEYS}gid": "2999",
            f"{INTENT_KEYS}resturl": heketi.url,
            f"{INTENT_KEYS}restuser": "admin",
            f"{INTENT_KEYS}secret-namespace": CONTROLLER_NAMESPACE,
            f"{INTENT_KEYS}secret-name": "heketi-admin-key",
        }
    )
    labels = dict(own["metadata"].get("labels") or {})
    labels["gluster.kubernetes.io/provisioned-for-pvc"] = f"gone-{forged_uid[:8]}"
    forged = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": f"glusterfs-dynamic-{forged_uid}",
            "namespace": TENANT,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {"ports": own["spec"]["ports"]},
    }
    r = as_tenant("POST", f"/api/v1/namespaces/{TENANT}/services", forged)
    assert r.status_code == 201, r.text
    # ... and the same record as a ConfigMap, in the only namespace it can write
    record = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"heketi-intent-{forged_uid}", "labels": {INTENT_LABEL: "v1"}},
        "data": {
            "provisioner": PROVISIONER_NAME,
            "claimNamespace": TENANT,
            "claimName": f"gone-{forged_uid[:8]}",
            "claimUID": forged_uid,
            "storageClass": "flow-tenant",
            "resturl": heketi.url,
            "volumeName": operator.name,
            "gid": "2999",
        },
    }
    r = as_tenant("POST", f"/api/v1/namespaces/{TENANT}/configmaps", record)
    assert r.status_code == 201, r.text

    # The RBAC boundary: not in the controller's namespace.
    r = as_tenant("POST", f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}/configmaps", record)
    assert r.status_code == 403, r.text
    assert f"system:serviceaccount:{TENANT}:tenant" in r.json()["message"]

    baseline = controller.metric(SWEEPS_METRIC)

    def swept_or_harmed() -> str | None:
        if heketi_volume(heketi, operator.id) is None:
            return "harm"
        return "swept" if controller.metric(SWEEPS_METRIC) >= baseline + 3 else None

    outcome = wait_for(swept_or_harmed, WAIT, "3 orphan sweeps (or the operator volume gone)")
    assert outcome == "swept", f"operator volume {operator.id} deleted:\n{controller.tail()}"
    assert heketi_volume(heketi, operator.id) is not None
    client.close()


# -- audit, after everything above ---------------------------------------------------------


def test_audit_finds_no_problems(real_kube: RealKube, kube_heketi: RealHeketi) -> None:
    """``heketi-provisioner audit -o json`` (admin kubeconfig) finds nothing amiss in
    what the flows above left: bound, released-and-retained and reclaimed volumes."""
    kube = real_kube
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEKETI_PROVISIONER_")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "provisioner",
            "audit",
            "-o",
            "json",
            f"--kubeconfig={kube.admin_kubeconfig}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=kube.workdir,
    )
    assert out.returncode == 0, f"exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    report = json.loads(out.stdout)
    assert report["problems"] == 0, out.stdout
    assert report["complete"] and not report["errors"], out.stdout
    ours = [
        pv
        for pv in kube.get("/api/v1/persistentvolumes")["items"]
        if (pv["metadata"].get("annotations") or {}).get("pv.kubernetes.io/provisioned-by")
        == PROVISIONER_NAME
    ]
    assert report["pvs"] == len(ours), out.stdout
    if ours:  # after the flows: their server was looked at
        assert [s["url"] for s in report["servers"]] == [kube_heketi.url], out.stdout
        assert report["heketi_volumes"] >= len(ours), out.stdout
    assert kube_heketi.admin_key not in out.stdout + out.stderr

"""Migration from the in-tree provisioner, on real peers: ours takes over the classes
and PVs of ``kubernetes.io/glusterfs`` once the control plane no longer has the plugin.

**1.25: the in-tree provisioner provisions** four claims (kube-controller-manager
1.25, real Heketi). Then that cluster stops; Heketi and its volumes stay.

**Why not switch on 1.25 itself.** No flag or feature gate of kube-controller-manager
1.25 unregisters the glusterfs plugin (``plugins.go`` always probes it), and its PV
binder must run (it binds and releases). ``--enable-dynamic-provisioning=false`` stops
all provisioning but not the plugin's deleter, and with it the claims lack the
``storage-provisioner`` annotation that ours rightly requires below 1.26. Taking the
plugin's grants away (Secret, Endpoints, Service) makes its deleter fail instead, and
a failed delete marks the released PV Failed, racing ours. Two controllers on one
provisioner name cannot be made deterministic on 1.25, which is why docs/migration.md
says to take over on 1.26+. So does this test:

**1.37: the same objects on the current release.** Class, Secret, claims, PVs,
Endpoints and Services are re-created in a 1.37 cluster as the in-tree provisioner
wrote them (verbatim, but for server-set fields, with each claim's new uid in place of
the old one, as in the PV's claimRef and the Endpoints/Service names), pointing at the
same Heketi. Then:

- a claim deleted before ours runs: the PV controller finds no deleter for
  ``kubernetes.io/glusterfs`` and the PV goes to phase **Failed**, not Released;
- ours starts with ``--provisioner-name kubernetes.io/glusterfs``: it must reclaim
  that Failed PV, and the one of a claim deleted while it runs (Heketi volume,
  Endpoints, Service, PV gone); a still-bound in-tree PV is left alone;
- a new claim of the class: the PV controller reports ProvisioningFailed, ours a
  Warning (1.26+ kubelets cannot mount glusterfs volumes), no PV; restarted with
  ``--assume-glusterfs-plugin``, ours provisions it with a GID no in-tree PV holds;
- deleting that claim: ours deletes its own volume (its PV is provisioned-by
  ``kubernetes.io/glusterfs`` too, so it also goes Failed first).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testbeds.harness.controller import ControllerProcess, start_controller
from testbeds.peers import (
    HEKETI_ADMIN_KEY,
    Peers,
    RealHeketi,
    RealKube,
    start_heketi,
    start_kube,
    wait_for,
)

from . import intree as it

pytestmark = pytest.mark.timeout(300)

Obj = dict[str, Any]

NS = "legacy"
CLASS = "legacy-glusterfs"
SECRET_NS, SECRET_NAME = "legacy-secrets", "heketi-key"
OLD = ("before", "after", "kept")  # claims the in-tree provisioner provisions
OUR_ANNOTATION_PREFIX = "heketi-provisioner.gluster.org/"
# Ours reacts to a watch event within a second: a wait for what it should do gives
# up after this many seconds.
REACTION = 10.0
PV_CONTROLLER_FINALIZER = "kubernetes.io/pv-controller"
# Set by the API server, or tied to the old cluster: not copied.
_SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "generation")


def _class(kube: RealKube, heketi_url: str) -> None:
    it.make_secret(kube, SECRET_NS, SECRET_NAME, {"key": HEKETI_ADMIN_KEY})
    it.make_class(
        kube,
        CLASS,
        it.INTREE,
        {
            "resturl": heketi_url,
            "restuser": "admin",
            "secretNamespace": SECRET_NS,
            "secretName": SECRET_NAME,
        },
    )


def _volume_id(pv: dict[str, Any]) -> str:
    return str(pv["metadata"]["annotations"]["gluster.kubernetes.io/heketi-volume-id"])


def _gid(pv: dict[str, Any]) -> int:
    return int(pv["metadata"]["annotations"]["pv.beta.kubernetes.io/gid"])


def _pv_paths(pv: dict[str, Any]) -> list[str]:
    ep = pv["spec"]["glusterfs"]["endpoints"]
    ns = pv["spec"]["claimRef"]["namespace"]
    return [
        f"/api/v1/persistentvolumes/{pv['metadata']['name']}",
        f"/api/v1/namespaces/{ns}/endpoints/{ep}",
        f"/api/v1/namespaces/{ns}/services/{ep}",
    ]


def _heketi_has(heketi: RealHeketi, volume_id: str) -> bool:
    return volume_id in it.heketi_volume_ids(heketi)


def _phase(kube: RealKube, pv: dict[str, Any]) -> str | None:
    now = it.get_or_none(kube, f"/api/v1/persistentvolumes/{pv['metadata']['name']}")
    return None if now is None else now["status"].get("phase")


def _copy(obj: dict[str, Any], old_uid: str, new_uid: str) -> dict[str, Any]:
    """``obj`` as the in-tree provisioner wrote it, for re-creation elsewhere."""
    meta = {k: v for k, v in obj["metadata"].items() if k not in _SERVER_SET}
    body = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    body["metadata"] = meta
    if body.get("kind") == "Service":
        body["spec"] = {
            k: v for k, v in body["spec"].items() if k not in ("clusterIP", "clusterIPs")
        }
    return it._substitute(body, {old_uid: new_uid})  # type: ignore[no-any-return]


# -- 1.25 -> 1.37 ----------------------------------------------------------------------


@dataclass
class Legacy:
    kube: RealKube  # the 1.37 cluster
    heketi: RealHeketi
    proxy: Any  # in front of Heketi: who deleted what
    pvs: dict[str, dict[str, Any]]  # claim name -> PV as re-created on 1.37
    tmp: Path


def _provision_intree(peers: Peers, tmp: Path, heketi_url: str) -> dict[str, tuple[Obj, ...]]:
    """claim name -> (claim, PV, Endpoints, Service) as in-tree wrote them on 1.25."""
    out: dict[str, tuple[Obj, ...]] = {}
    with start_kube(peers, "1.25", tmp / "kube-1.25") as kube:
        _class(kube, heketi_url)
        for name in OLD:
            it.make_claim(kube, NS, name, CLASS)
        for name in OLD:
            claim, pv = it.wait_bound(kube, NS, name, timeout=60)
            ep = pv["spec"]["glusterfs"]["endpoints"]
            out[name] = (
                claim,
                pv,
                kube.get(f"/api/v1/namespaces/{NS}/endpoints/{ep}"),
                kube.get(f"/api/v1/namespaces/{NS}/services/{ep}"),
            )
    return out


def _restore(kube: RealKube, objects: Mapping[str, tuple[Obj, ...]]) -> dict[str, Obj]:
    """Each claim first (its uid is new), then its Endpoints, Service and PV with the
    old uid replaced: the PV is pre-bound (claimRef), so the binder binds the two."""
    pvs = {}
    it.make_namespace(kube, NS)
    for name, (claim, pv, endpoints, service) in objects.items():
        old_uid = claim["metadata"]["uid"]
        created = kube.create(
            f"/api/v1/namespaces/{NS}/persistentvolumeclaims", it.claim_body(name, CLASS)
        )
        new_uid = created["metadata"]["uid"]
        kube.create(f"/api/v1/namespaces/{NS}/endpoints", _copy(endpoints, old_uid, new_uid))
        kube.create(f"/api/v1/namespaces/{NS}/services", _copy(service, old_uid, new_uid))
        body = _copy(pv, old_uid, new_uid)
        body["spec"]["claimRef"].pop("resourceVersion", None)
        pvs[name] = kube.create("/api/v1/persistentvolumes", body)
    for name in objects:
        it.wait_bound(kube, NS, name, timeout=60)
    return pvs


@pytest.fixture(scope="module")
def legacy(real_peers: Peers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Legacy]:
    delay_proxy = it.bench_module("delay_proxy")
    tmp = tmp_path_factory.mktemp("migration")
    with (
        start_heketi(real_peers, tmp / "heketi", loglevel="warning") as heketi,
        delay_proxy.HeketiProxy(heketi.url) as proxy,
    ):
        objects = _provision_intree(real_peers, tmp, proxy.url)
        provisioners = {o[1]["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"]
                        for o in objects.values()}  # fmt: skip
        assert provisioners == {it.INTREE}
        assert sorted(_gid(o[1]) for o in objects.values()) == [2000, 2001, 2002]
        with start_kube(real_peers, "current", tmp / "kube-current") as kube:
            _class(kube, proxy.url)
            pvs = _restore(kube, objects)
            yield Legacy(kube, heketi, proxy, pvs, tmp)


def test_released_intree_pv_goes_failed_on_current(legacy: Legacy) -> None:
    """The premise, before ours runs: the PV controller of 1.37 finds no deleter for
    kubernetes.io/glusterfs; the PV goes to phase Failed (VolumeFailedDelete event),
    not Released, and its Heketi volume stays."""
    kube = legacy.kube
    pv = legacy.pvs["before"]
    kube.request("DELETE", f"/api/v1/namespaces/{NS}/persistentvolumeclaims/before")
    wait_for(lambda: _phase(kube, pv) == "Failed", 60, "in-tree PV Failed")
    events = it.failed_delete_events(kube, pv["metadata"]["name"])
    assert events and it.INTREE in events[0]["message"], events
    assert _heketi_has(legacy.heketi, _volume_id(pv))


def test_new_claim_of_an_intree_class_is_refused_by_the_pv_controller(legacy: Legacy) -> None:
    """1.37's PV controller: ProvisioningFailed naming the plugin, and never the
    storage-provisioner annotation: the claim stays Pending for whoever takes over."""
    kube = legacy.kube
    uid = it.make_claim(kube, NS, "new", CLASS)["metadata"]["uid"]

    def failed() -> list[dict[str, Any]]:
        return [
            e
            for e in it.claim_events(kube, NS, uid)
            if it.event_source(e) == "persistentvolume-controller"
            and e["reason"] == "ProvisioningFailed"
        ]

    events = wait_for(failed, 30, "ProvisioningFailed from the PV controller")
    assert it.INTREE in events[0]["message"], events
    claim = kube.get(f"/api/v1/namespaces/{NS}/persistentvolumeclaims/new")
    assert "volume.kubernetes.io/storage-provisioner" not in claim["metadata"].get(
        "annotations", {}
    )
    assert claim["status"]["phase"] == "Pending"


@pytest.fixture(scope="module")
def ours(legacy: Legacy) -> Iterator[ControllerProcess]:
    """Ours, under the in-tree name, default settings (no --assume-glusterfs-plugin)."""
    controller = start_controller(
        legacy.kube,
        log_path=legacy.tmp / "controller.log",
        provisioner_name=it.INTREE,
        orphan_sweep_period=0,
    )
    try:
        yield controller
    finally:
        controller.stop()
        lines = controller.forbidden_lines()
        assert not lines, "controller refused by RBAC:\n" + "\n".join(lines[:10])


def _left_after_reclaim(legacy: Legacy, pv: Obj, check: Any, timeout: float) -> list[str]:
    """Waits until the PV, its Endpoints, Service and Heketi volume are gone; returns
    what is still there after ``timeout`` (empty: all gone)."""

    def left() -> list[str]:
        out = [p for p in _pv_paths(pv) if it.get_or_none(legacy.kube, p) is not None]
        if _heketi_has(legacy.heketi, _volume_id(pv)):
            out.append(f"heketi volume {_volume_id(pv)}")
        now = it.get_or_none(legacy.kube, _pv_paths(pv)[0])
        if now is not None:
            meta = now["metadata"]
            out.append(
                f"PV phase {now['status'].get('phase')}, finalizers {meta.get('finalizers')}, "
                f"deletionTimestamp {meta.get('deletionTimestamp')}"
            )
        return out

    try:
        wait_for(lambda: not left(), timeout, "reclaimed", check=check)
    except TimeoutError:
        return left()
    return []


def test_ours_reclaims_a_failed_intree_pv(legacy: Legacy, ours: ControllerProcess) -> None:
    """Claim deleted before ours started: the PV is already Failed when ours sees it."""
    left = _left_after_reclaim(legacy, legacy.pvs["before"], ours.check_running, REACTION)
    assert not left


def test_ours_reclaims_an_intree_pv_whose_claim_goes_while_it_runs(
    legacy: Legacy, ours: ControllerProcess
) -> None:
    legacy.kube.request("DELETE", f"/api/v1/namespaces/{NS}/persistentvolumeclaims/after")
    left = _left_after_reclaim(legacy, legacy.pvs["after"], ours.check_running, REACTION)
    assert not left


def test_bound_intree_pv_is_left_alone(legacy: Legacy, ours: ControllerProcess) -> None:
    pv = legacy.pvs["kept"]
    assert _phase(legacy.kube, pv) == "Bound"
    assert _heketi_has(legacy.heketi, _volume_id(pv))
    assert all(it.get_or_none(legacy.kube, p) is not None for p in _pv_paths(pv))


def test_new_claim_gets_our_warning_and_no_pv(legacy: Legacy, ours: ControllerProcess) -> None:
    """Without --assume-glusterfs-plugin ours warns on the claim (1.26+ kubelets
    cannot mount glusterfs volumes, docs/migration.md) and creates nothing."""
    kube = legacy.kube
    claim = kube.get(f"/api/v1/namespaces/{NS}/persistentvolumeclaims/new")
    uid = claim["metadata"]["uid"]
    events = wait_for(
        lambda: [
            e
            for e in it.claim_events(kube, NS, uid)
            if it.event_source(e) == it.INTREE and e["type"] == "Warning"
        ],
        REACTION,
        "a Warning from ours",
        check=ours.check_running,
    )
    assert "glusterfs" in events[0]["message"], events
    assert it.get_or_none(kube, f"/api/v1/persistentvolumes/pvc-{uid}") is None
    assert not kube.get(f"/api/v1/namespaces/{NS}/persistentvolumeclaims/new")["spec"].get(
        "volumeName"
    )


@pytest.fixture(scope="module")
def ours_assuming_plugin(
    legacy: Legacy, ours: ControllerProcess
) -> Iterator[tuple[ControllerProcess, dict[str, Any]]]:
    """Ours restarted with --assume-glusterfs-plugin; the pending claim "new" bound."""
    ours.stop()
    controller = start_controller(
        legacy.kube,
        log_path=legacy.tmp / "controller-assume.log",
        provisioner_name=it.INTREE,
        orphan_sweep_period=0,
        extra_args=["--assume-glusterfs-plugin"],
    )
    try:
        _, pv = it.wait_bound(legacy.kube, NS, "new", timeout=30, check=controller.check_running)
        yield controller, pv
    finally:
        controller.stop()
        lines = controller.forbidden_lines()
        assert not lines, "controller refused by RBAC:\n" + "\n".join(lines[:10])


def test_new_claim_provisioned_by_ours_next_to_intree_gids(
    legacy: Legacy, ours_assuming_plugin: tuple[ControllerProcess, dict[str, Any]]
) -> None:
    _, pv = ours_assuming_plugin
    kube = legacy.kube
    ann = pv["metadata"]["annotations"]
    assert ann["pv.kubernetes.io/provisioned-by"] == it.INTREE
    assert any(k.startswith(OUR_ANNOTATION_PREFIX) for k in ann), ann
    # GIDs of the other PVs whose Heketi volume still exists (a GID is free again once
    # its volume is gone, even while the PV object is on its way out)
    volumes = it.heketi_volume_ids(legacy.heketi)
    held = {
        _gid(p)
        for p in kube.get("/api/v1/persistentvolumes")["items"]
        if p["metadata"]["name"] != pv["metadata"]["name"]
        and "pv.beta.kubernetes.io/gid" in p["metadata"].get("annotations", {})
        and _volume_id(p) in volumes
    }
    assert _gid(legacy.pvs["kept"]) in held
    assert _gid(pv) >= 2000 and _gid(pv) not in held, (_gid(pv), held)


def test_pv_controller_swaps_the_finalizers_of_our_pv(
    legacy: Legacy, ours_assuming_plugin: tuple[ControllerProcess, dict[str, Any]]
) -> None:
    """1.37's PV controller treats every Delete-policy PV provisioned-by kubernetes.io/*
    as in-tree (HonorPVReclaimPolicy): it adds kubernetes.io/pv-controller and removes
    external-provisioner.volume.kubernetes.io/finalizer, also on the PV ours wrote
    under the in-tree name."""
    _, pv = ours_assuming_plugin
    path = f"/api/v1/persistentvolumes/{pv['metadata']['name']}"
    finalizers = wait_for(
        lambda: (
            (f := legacy.kube.get(path)["metadata"].get("finalizers", []))
            and PV_CONTROLLER_FINALIZER in f
            and f
        ),
        30,
        "the PV controller's finalizer on our PV",
    )
    assert "external-provisioner.volume.kubernetes.io/finalizer" not in finalizers, finalizers
    assert _heketi_has(legacy.heketi, _volume_id(pv))


def test_ours_deletes_its_own_pv_under_the_intree_name(
    legacy: Legacy, ours_assuming_plugin: tuple[ControllerProcess, dict[str, Any]]
) -> None:
    """Our own PV says provisioned-by kubernetes.io/glusterfs as well, so the 1.37 PV
    controller marks it Failed on release just like an in-tree one."""
    controller, pv = ours_assuming_plugin
    legacy.kube.request("DELETE", f"/api/v1/namespaces/{NS}/persistentvolumeclaims/new")
    assert not _left_after_reclaim(legacy, pv, controller.check_running, REACTION)


def test_heketi_deletes_came_from_ours_only(legacy: Legacy) -> None:
    """Nothing but ours ever deleted a Heketi volume (the Go client of in-tree never
    ran against these PVs on 1.37)."""
    agents = {
        r.user_agent.split("/")[0]
        for r in legacy.proxy.records()
        if r.method == "DELETE" and r.path.startswith("/volumes/")
    }
    assert agents <= {"python-requests"}, agents

"""The control-plane emulation: admission, PV binder, protection finalizers, events."""

from __future__ import annotations

from kubernetes import client

from provisioner.sandbox.kube import KubeSandbox

PROVISIONER = "gluster.org/heketi"
WAITING = (
    "Waiting for a volume to be created either by the external provisioner "
    "'gluster.org/heketi' or manually by the system administrator. If volume creation is "
    "delayed, please verify that your external provisioner is running and correctly registered."
)


def _claim(kube: KubeSandbox, name: str = "c") -> dict:
    assert kube.wait_idle()
    obj = kube.get_object("persistentvolumeclaims", "default", name)
    assert obj is not None
    return obj


def _reasons(core: client.CoreV1Api, name: str) -> list[tuple[str, str, str]]:
    events = core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}")
    return [(e.type, e.reason, e.message) for e in events.items]


def _ref(claim: dict) -> dict:
    meta = claim["metadata"]
    return {"kind": "PersistentVolumeClaim", "namespace": meta["namespace"], "name": meta["name"],
            "uid": meta["uid"]}  # fmt: skip


def test_default_storage_class_admission(kube, core, storage, bodies) -> None:
    storage.create_storage_class(bodies.storage_class("aaa-old", default=True))
    storage.create_storage_class(bodies.storage_class("zzz-new", default=True))
    storage.create_storage_class(bodies.storage_class("plain"))
    made = core.create_namespaced_persistent_volume_claim("default", bodies.claim("c"))
    # Several defaults: the newest wins (same second here: ties go to the name order).
    assert made.spec.storage_class_name == "zzz-new"
    explicit = core.create_namespaced_persistent_volume_claim(
        "default", bodies.claim("e", storageClassName="plain")
    )
    assert explicit.spec.storage_class_name == "plain"
    beta = bodies.claim("b")
    beta["metadata"]["annotations"] = {"volume.beta.kubernetes.io/storage-class": "plain"}
    assert (
        core.create_namespaced_persistent_volume_claim("default", beta).spec.storage_class_name
        is None
    )
    empty = core.create_namespaced_persistent_volume_claim(
        "default", bodies.claim("n", storageClassName="")
    )
    assert empty.spec.storage_class_name == ""


def test_no_default_class_leaves_claim_alone(core, bodies) -> None:
    made = core.create_namespaced_persistent_volume_claim("default", bodies.claim("c"))
    assert made.spec.storage_class_name is None
    assert made.metadata.finalizers == ["kubernetes.io/pvc-protection"]
    assert made.status.phase == "Pending"


def test_storage_provisioner_annotations_and_event(kube, core, storage, bodies) -> None:
    storage.create_storage_class(bodies.storage_class())
    core.create_namespaced_persistent_volume_claim(
        "default", bodies.claim("c", storageClassName="gluster")
    )
    claim = _claim(kube)
    annotations = claim["metadata"]["annotations"]
    assert annotations["volume.kubernetes.io/storage-provisioner"] == PROVISIONER
    assert annotations["volume.beta.kubernetes.io/storage-provisioner"] == PROVISIONER
    assert ("Normal", "ExternalProvisioning", WAITING) in _reasons(core, "c")
    event = core.list_namespaced_event("default").items[0]
    assert event.involved_object.uid == claim["metadata"]["uid"]
    assert event.source.component == "persistentvolume-controller"


def test_no_provisioner_class_gets_no_annotation(kube, core, storage, bodies) -> None:
    storage.create_storage_class(bodies.storage_class("local", "kubernetes.io/no-provisioner"))
    core.create_namespaced_persistent_volume_claim(
        "default", bodies.claim("c", storageClassName="local")
    )
    assert "annotations" not in _claim(kube)["metadata"]


def test_class_created_after_claim_still_triggers(kube, core, storage, bodies) -> None:
    core.create_namespaced_persistent_volume_claim(
        "default", bodies.claim("c", storageClassName="gluster")
    )
    assert "annotations" not in _claim(kube)["metadata"]
    assert _reasons(core, "c") == [
        ("Warning", "ProvisioningFailed", 'storageclass.storage.k8s.io "gluster" not found')
    ]
    storage.create_storage_class(bodies.storage_class())
    assert (
        _claim(kube)["metadata"]["annotations"]["volume.kubernetes.io/storage-provisioner"]
        == PROVISIONER
    )


def test_wait_for_first_consumer_needs_selected_node(kube, core, storage, bodies) -> None:
    storage.create_storage_class(bodies.storage_class(mode="WaitForFirstConsumer"))
    core.create_namespaced_persistent_volume_claim(
        "default", bodies.claim("c", storageClassName="gluster")
    )
    claim = _claim(kube)
    assert "volume.kubernetes.io/storage-provisioner" not in (
        claim["metadata"].get("annotations") or {}
    )
    assert [r[1] for r in _reasons(core, "c")] == ["WaitForFirstConsumer"]
    kube.select_node("default", "c", "node-1")
    annotations = _claim(kube)["metadata"]["annotations"]
    assert annotations["volume.kubernetes.io/selected-node"] == "node-1"
    assert annotations["volume.kubernetes.io/storage-provisioner"] == PROVISIONER
    assert "ExternalProvisioning" in [r[1] for r in _reasons(core, "c")]


def test_prebound_volume_binds_claim(kube, core, storage, bodies) -> None:
    storage.create_storage_class(bodies.storage_class())
    core.create_namespaced_persistent_volume_claim(
        "default", bodies.claim("c", storageClassName="gluster")
    )
    claim = _claim(kube)
    core.create_persistent_volume(bodies.volume("pvc-x", claim=_ref(claim), size="2Gi"))
    claim = _claim(kube)
    assert claim["spec"]["volumeName"] == "pvc-x"
    assert claim["status"] == {
        "phase": "Bound",
        "accessModes": ["ReadWriteOnce"],
        "capacity": {"storage": "2Gi"},
    }
    assert claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"] == "yes"
    assert claim["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    volume = kube.get_object("persistentvolumes", None, "pvc-x")
    assert volume["status"]["phase"] == "Bound"
    assert "pv.kubernetes.io/bound-by-controller" not in (
        volume["metadata"].get("annotations") or {}
    )
    assert volume["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]


def test_claim_naming_a_volume_gets_bound_both_ways(kube, core, bodies) -> None:
    core.create_persistent_volume(bodies.volume("static", storage_class=""))
    assert kube.wait_idle()
    assert kube.get_object("persistentvolumes", None, "static")["status"]["phase"] == "Available"
    core.create_namespaced_persistent_volume_claim(
        "default", bodies.claim("c", volumeName="static", storageClassName="")
    )
    claim = _claim(kube)
    assert claim["status"]["phase"] == "Bound"
    volume = kube.get_object("persistentvolumes", None, "static")
    assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
    assert volume["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"


def test_deleted_claim_releases_its_volume(kube, core, bodies) -> None:
    core.create_namespaced_persistent_volume_claim("default", bodies.claim("c"))
    claim = _claim(kube)
    core.create_persistent_volume(bodies.volume("pv-del", claim=_ref(claim), policy="Delete"))
    core.create_persistent_volume(
        bodies.volume("pv-keep", claim={**_ref(claim), "uid": "other"}, policy="Retain")
    )
    assert _claim(kube)["status"]["phase"] == "Bound"
    # A claimRef uid that does not match the live claim means an older claim: Released.
    assert kube.get_object("persistentvolumes", None, "pv-keep")["status"]["phase"] == "Released"
    core.delete_namespaced_persistent_volume_claim("c", "default")
    assert kube.wait_idle()
    assert kube.get_object("persistentvolumeclaims", "default", "c") is None
    # Delete policy: Released until the external provisioner deletes it.
    assert kube.get_object("persistentvolumes", None, "pv-del")["status"]["phase"] == "Released"


def test_retain_volume_stays_released_and_protection_lets_it_go(kube, core, bodies) -> None:
    core.create_namespaced_persistent_volume_claim("default", bodies.claim("c"))
    claim = _claim(kube)
    core.create_persistent_volume(bodies.volume("pv", claim=_ref(claim), policy="Retain"))
    assert kube.wait_idle()
    # A bound volume is protected: deleting it only marks it.
    core.delete_persistent_volume("pv")
    assert kube.wait_idle()
    assert kube.get_object("persistentvolumes", None, "pv")["metadata"]["deletionTimestamp"]
    core.delete_namespaced_persistent_volume_claim("c", "default")
    assert kube.wait_idle()
    assert kube.get_object("persistentvolumes", None, "pv") is None


def test_retain_is_released_forever(kube, core, bodies) -> None:
    core.create_namespaced_persistent_volume_claim("default", bodies.claim("c"))
    claim = _claim(kube)
    core.create_persistent_volume(bodies.volume("pv", claim=_ref(claim), policy="Retain"))
    assert kube.wait_idle()
    core.delete_namespaced_persistent_volume_claim("c", "default")
    assert kube.wait_idle()
    # A new claim with the same name is a different claim: the volume stays Released.
    core.create_namespaced_persistent_volume_claim("default", bodies.claim("c"))
    assert kube.wait_idle()
    volume = kube.get_object("persistentvolumes", None, "pv")
    assert volume["status"]["phase"] == "Released"
    assert _claim(kube)["status"]["phase"] == "Pending"


def test_claim_in_use_by_a_pod_keeps_its_finalizer(kube, core, bodies) -> None:
    core.create_namespaced_persistent_volume_claim("default", bodies.claim("c"))
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "x", "image": "busybox"}],
           "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]}}  # fmt: skip
    core.create_namespaced_pod("default", pod)
    core.delete_namespaced_persistent_volume_claim("c", "default")
    assert _claim(kube)["metadata"]["deletionTimestamp"]
    core.delete_namespaced_pod("p", "default")
    assert kube.wait_idle()
    assert kube.get_object("persistentvolumeclaims", "default", "c") is None


def test_volume_whose_claim_is_missing_but_unset_uid_stays_available(kube, core, bodies) -> None:
    core.create_persistent_volume(
        bodies.volume("pv", claim={"namespace": "default", "name": "later"})
    )
    assert kube.wait_idle()
    assert kube.get_object("persistentvolumes", None, "pv")["status"]["phase"] == "Available"
    core.create_namespaced_persistent_volume_claim("default", bodies.claim("later"))
    assert _claim(kube, "later")["spec"]["volumeName"] == "pv"


def test_lost_claim_when_volume_disappears(kube, core, bodies) -> None:
    core.create_namespaced_persistent_volume_claim("default", bodies.claim("c"))
    claim = _claim(kube)
    core.create_persistent_volume(bodies.volume("pv", claim=_ref(claim)))
    assert kube.wait_idle()
    core.patch_persistent_volume("pv", {"metadata": {"finalizers": None}})
    kube.registry.store.remove("persistentvolumes", "", "pv")  # as if etcd lost it
    assert _claim(kube)["status"]["phase"] == "Lost"
    assert "ClaimLost" in [r[1] for r in _reasons(core, "c")]


def test_events_visible_through_events_v1(kube, api_client, storage, core, bodies) -> None:
    storage.create_storage_class(bodies.storage_class())
    core.create_namespaced_persistent_volume_claim(
        "default", bodies.claim("c", storageClassName="gluster")
    )
    assert kube.wait_idle()
    events = client.EventsV1Api(api_client).list_namespaced_event(
        "default", field_selector="regarding.name=c"
    )
    assert [e.reason for e in events.items] == ["ExternalProvisioning"]
    assert events.items[0].note == WAITING
    assert events.items[0].regarding.kind == "PersistentVolumeClaim"
    made = client.EventsV1Api(api_client).create_namespaced_event(
        "default",
        {"metadata": {"name": "mine"}, "eventTime": "2024-01-01T00:00:00.000000Z",
         "reportingController": "me", "reportingInstance": "me-1", "action": "Provision",
         "reason": "ProvisioningSucceeded", "note": "done", "type": "Normal",
         "regarding": {"kind": "PersistentVolumeClaim", "name": "c", "namespace": "default"}},
    )  # fmt: skip
    assert made.note == "done"
    legacy = core.read_namespaced_event("mine", "default")
    assert legacy.message == "done"
    assert legacy.involved_object.name == "c"


def test_static_binding_picks_smallest_matching_available_volume(kube, core, bodies) -> None:
    for name, size in (("big", "10Gi"), ("small", "2Gi"), ("tiny", "1Gi")):
        core.create_persistent_volume(bodies.volume(name, size=size, storage_class=""))
    rwx = bodies.volume("rwx", size="2Gi", storage_class="")
    rwx["spec"]["accessModes"] = ["ReadWriteMany"]
    core.create_persistent_volume(rwx)
    core.create_namespaced_persistent_volume_claim(
        "default", bodies.claim("c", size="1500Mi", storageClassName="")
    )
    claim = _claim(kube)
    assert claim["spec"]["volumeName"] == "small"
    assert claim["status"]["capacity"] == {"storage": "2Gi"}
    volume = kube.get_object("persistentvolumes", None, "small")
    assert volume["spec"]["claimRef"]["name"] == "c"
    assert volume["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert kube.get_object("persistentvolumes", None, "tiny")["status"]["phase"] == "Available"


def test_static_binding_honours_selector_and_class(kube, core, bodies) -> None:
    labelled = bodies.volume("labelled", storage_class="")
    labelled["metadata"]["labels"] = {"tier": "gold"}
    core.create_persistent_volume(bodies.volume("plain", storage_class=""))
    core.create_persistent_volume(bodies.volume("classy", storage_class="other"))
    core.create_persistent_volume(labelled)
    selector = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}]}
    core.create_namespaced_persistent_volume_claim(
        "default", bodies.claim("c", storageClassName="", selector=selector)
    )
    assert _claim(kube)["spec"]["volumeName"] == "labelled"


def test_static_binding_waits_for_a_volume_to_appear(kube, core, bodies) -> None:
    core.create_namespaced_persistent_volume_claim(
        "default", bodies.claim("c", storageClassName="")
    )
    assert _claim(kube)["status"]["phase"] == "Pending"
    core.create_persistent_volume(bodies.volume("late", storage_class=""))
    assert _claim(kube)["spec"]["volumeName"] == "late"

"""Create/read/update/delete through the official client, with real Status errors."""

from __future__ import annotations

import re

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from provisioner.sandbox.kube import KubeSandbox


def test_create_sets_server_metadata(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map(
        "default", {"metadata": {"name": "cm1"}, "data": {"a": "b"}}
    )
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert int(created.metadata.resource_version) > 0
    again = core.read_namespaced_config_map("cm1", "default")
    assert again.data == {"a": "b"}
    assert again.metadata.resource_version == created.metadata.resource_version


def test_resource_versions_increase_globally(core: client.CoreV1Api) -> None:
    first = core.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    second = core.create_namespaced_secret("default", {"metadata": {"name": "b"}})
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)


def test_generate_name(core: client.CoreV1Api) -> None:
    made = core.create_namespaced_config_map("default", {"metadata": {"generateName": "gen-"}})
    assert made.metadata.name.startswith("gen-")
    assert len(made.metadata.name) == len("gen-") + 5


def test_already_exists(raw) -> None:
    body = {"metadata": {"name": "dup"}}
    assert raw("POST", "/api/v1/namespaces/default/configmaps", body)[0] == 201
    status, err = raw("POST", "/api/v1/namespaces/default/configmaps", body)
    assert status == 409
    assert err["kind"] == "Status"
    assert err["reason"] == "AlreadyExists"
    assert err["details"] == {"name": "dup", "kind": "configmaps"}


def test_not_found_status(raw) -> None:
    status, err = raw("GET", "/api/v1/persistentvolumes/nope")
    assert status == 404
    assert err["reason"] == "NotFound"
    assert err["message"] == 'persistentvolumes "nope" not found'


def test_group_qualified_not_found(storage: client.StorageV1Api) -> None:
    with pytest.raises(ApiException) as info:
        storage.read_storage_class("missing")
    assert info.value.status == 404
    assert "storageclasses.storage.k8s.io" in info.value.body


def test_namespace_must_exist(raw) -> None:
    status, err = raw("POST", "/api/v1/namespaces/ghost/configmaps", {"metadata": {"name": "x"}})
    assert status == 404
    assert err["message"] == 'namespaces "ghost" not found'


def test_namespace_mismatch_is_bad_request(raw) -> None:
    body = {"metadata": {"name": "x", "namespace": "kube-system"}}
    status, err = raw("POST", "/api/v1/namespaces/default/configmaps", body)
    assert status == 400
    assert err["reason"] == "BadRequest"


def test_update_with_stale_resource_version_conflicts(core: client.CoreV1Api) -> None:
    made = core.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    updated = core.replace_namespaced_config_map(
        "cm", "default", {"metadata": {"name": "cm"}, "data": {"k": "1"}}
    )
    assert updated.metadata.resource_version != made.metadata.resource_version
    stale = {"metadata": {"name": "cm", "resourceVersion": made.metadata.resource_version}}
    with pytest.raises(ApiException) as info:
        core.replace_namespaced_config_map("cm", "default", stale)
    assert info.value.status == 409
    assert "the object has been modified; please apply your changes" in info.value.body


def test_noop_update_keeps_resource_version(raw) -> None:
    _, made = raw("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "n"}})
    _, same = raw("PUT", "/api/v1/namespaces/default/configmaps/n", made)
    assert same["metadata"]["resourceVersion"] == made["metadata"]["resourceVersion"]


def test_update_ignores_status_for_claims(bodies, core: client.CoreV1Api, raw) -> None:
    core.create_namespaced_persistent_volume_claim("default", bodies.claim("c"))
    _, current = raw("GET", "/api/v1/namespaces/default/persistentvolumeclaims/c")
    current["status"] = {"phase": "Bound"}
    current["metadata"]["labels"] = {"x": "y"}
    status, updated = raw("PUT", "/api/v1/namespaces/default/persistentvolumeclaims/c", current)
    assert status == 200
    assert updated["status"]["phase"] == "Pending"
    assert updated["metadata"]["labels"] == {"x": "y"}


def test_status_subresource_changes_only_status(
    bodies, raw, core: client.CoreV1Api, kube: KubeSandbox
) -> None:
    raw("POST", "/api/v1/persistentvolumes", bodies.volume("pv1"))
    assert kube.wait_idle()  # Pending → Available first: the PUT below must not race it
    _, current = raw("GET", "/api/v1/persistentvolumes/pv1")
    current["status"] = {"phase": "Failed", "message": "x"}
    current["metadata"]["labels"] = {"ignored": "yes"}
    status, updated = raw("PUT", "/api/v1/persistentvolumes/pv1/status", current)
    assert status == 200
    stamp = updated["status"].pop("lastPhaseTransitionTime")  # 1.29+: a phase change
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp), stamp
    assert updated["status"] == {"phase": "Failed", "message": "x"}
    assert "labels" not in updated["metadata"]


def test_phase_transition_time_stays_while_the_phase_does(bodies, raw, kube: KubeSandbox) -> None:
    """A status write that keeps the phase but leaves the stamp out keeps the stamp
    (1.29+ registry); only a phase change moves it."""
    raw("POST", "/api/v1/persistentvolumes", bodies.volume("pv1"))
    assert kube.wait_idle()  # Pending → Available by the binder
    _, made = raw("GET", "/api/v1/persistentvolumes/pv1")
    stamp = made["status"]["lastPhaseTransitionTime"]
    made["status"] = {"phase": made["status"]["phase"], "message": "same phase"}
    _, updated = raw("PUT", "/api/v1/persistentvolumes/pv1/status", made)
    assert updated["status"]["lastPhaseTransitionTime"] == stamp
    assert updated["status"]["message"] == "same phase"


def test_delete_honours_preconditions_and_names_what_it_deleted(raw) -> None:
    """A Secret's registry answers a Status naming the deleted object (a PV's, a
    claim's or a Service's answers the object itself)."""
    _, made = raw("POST", "/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}})
    wrong = {"preconditions": {"uid": "not-the-uid"}}
    status, err = raw("DELETE", "/api/v1/namespaces/default/secrets/s", wrong)
    assert status == 409 and err["reason"] == "Conflict"
    stale = {"preconditions": {"resourceVersion": "1"}}
    assert raw("DELETE", "/api/v1/namespaces/default/secrets/s", stale)[0] == 409
    uid = made["metadata"]["uid"]
    ok = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"}
    status, gone = raw("DELETE", "/api/v1/namespaces/default/secrets/s", ok)
    assert status == 200
    assert gone == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "s", "kind": "secrets", "uid": uid},
    }
    assert raw("GET", "/api/v1/namespaces/default/secrets/s")[0] == 404
    service = {"metadata": {"name": "w"}, "spec": {"ports": [{"port": 80}]}}
    raw("POST", "/api/v1/namespaces/default/services", service)
    status, svc = raw("DELETE", "/api/v1/namespaces/default/services/w")
    assert status == 200 and svc["kind"] == "Service" and svc["spec"]["clusterIP"]


def test_finalizers_hold_deletion_until_removed(raw, kube: KubeSandbox) -> None:
    body = {"metadata": {"name": "f", "finalizers": ["example.com/keep"]}}
    raw("POST", "/api/v1/namespaces/default/configmaps", body)
    status, marked = raw("DELETE", "/api/v1/namespaces/default/configmaps/f")
    assert status == 200
    assert marked["metadata"]["deletionTimestamp"]
    assert kube.get_object("configmaps", "default", "f") is not None
    status, _ = raw(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/f",
        {"metadata": {"finalizers": ["example.com/keep", "example.com/new"]}},
        "application/merge-patch+json",
    )
    assert status == 422
    patch = {"metadata": {"finalizers": None}}
    raw("PATCH", "/api/v1/namespaces/default/configmaps/f", patch, "application/merge-patch+json")
    assert kube.get_object("configmaps", "default", "f") is None


def test_create_on_update_for_leases(api_client: client.ApiClient, raw) -> None:
    body = {"metadata": {"name": "leader"}, "spec": {"holderIdentity": "me"}}
    status, made = raw("PUT", "/apis/coordination.k8s.io/v1/namespaces/default/leases/leader", body)
    assert status == 201
    assert made["spec"]["holderIdentity"] == "me"
    leases = client.CoordinationV1Api(api_client)
    assert leases.read_namespaced_lease("leader", "default").spec.holder_identity == "me"


def test_cluster_scoped_objects_and_namespaces(bodies, storage: client.StorageV1Api, core) -> None:
    made = storage.create_storage_class(bodies.storage_class())
    assert made.metadata.namespace is None
    assert made.reclaim_policy == "Delete"
    names = {ns.metadata.name for ns in core.list_namespace().items}
    assert {"default", "kube-system"} <= names


def test_namespace_deletion_removes_contents(
    bodies, core: client.CoreV1Api, kube: KubeSandbox
) -> None:
    core.create_namespace({"metadata": {"name": "scratch"}})
    core.create_namespaced_config_map("scratch", {"metadata": {"name": "x"}})
    core.create_namespaced_persistent_volume_claim("scratch", bodies.claim("c"))
    core.delete_namespace("scratch")
    assert kube.wait_idle()
    assert kube.get_object("namespaces", None, "scratch") is None
    assert kube.list_objects("configmaps", "scratch") == []
    assert kube.list_objects("persistentvolumeclaims", "scratch") == []


def test_python_side_access_returns_copies(kube: KubeSandbox, core) -> None:
    core.create_namespaced_config_map("default", {"metadata": {"name": "c"}, "data": {"a": "1"}})
    copy = kube.get_object("configmaps", "default", "c")
    assert copy is not None
    copy["data"]["a"] = "changed"
    assert core.read_namespaced_config_map("c", "default").data == {"a": "1"}
    assert [o["metadata"]["name"] for o in kube.list_objects("configmaps", "default")] == ["c"]


def test_bearer_token_required_when_configured() -> None:
    import requests

    with KubeSandbox(token="s3cret") as kube:
        assert requests.get(f"{kube.url}/api/v1/namespaces", timeout=5).status_code == 401
        from kubernetes import config

        api = config.new_client_from_config(config_file=kube.kubeconfig_path)
        names = [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items]
        assert "default" in names
        api.close()


def test_create_resets_volume_status(raw, bodies) -> None:
    body = bodies.volume("pv")
    body["status"] = {"phase": "Bound"}
    status, made = raw("POST", "/api/v1/persistentvolumes", body)
    assert status == 201
    stamp = made["status"].pop("lastPhaseTransitionTime")  # 1.29+ sets it on create
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp), stamp
    assert made["status"] == {"phase": "Pending"}


def test_dry_run_checks_everything_and_writes_nothing(raw, kube: KubeSandbox) -> None:
    path = "/api/v1/namespaces/default/configmaps"
    dry = [("dryRun", "All")]
    status, made = raw("POST", path, {"metadata": {"name": "d"}, "data": {"a": "b"}}, query=dry)
    assert status == 201 and made["data"] == {"a": "b"} and made["metadata"]["uid"]
    assert "resourceVersion" not in made["metadata"]
    assert kube.get_object("configmaps", "default", "d") is None
    status, err = raw("POST", path, {"metadata": {"name": "Bad_"}}, query=dry)
    assert status == 422  # validated all the same
    status, err = raw("POST", path, {"metadata": {"name": "d"}}, query=[("dryRun", "Nope")])
    assert status == 422 and err["details"]["kind"] == "CreateOptions"
    assert err["details"]["causes"][0]["field"] == "dryRun"
    raw("POST", path, {"metadata": {"name": "u", "finalizers": ["example.com/keep"]}})
    before = kube.get_object("configmaps", "default", "u")
    assert before is not None
    status, updated = raw(
        "PUT", f"{path}/u", {"metadata": {"name": "u"}, "data": {"x": "y"}}, query=dry
    )
    assert status == 200 and updated["data"] == {"x": "y"}
    assert updated["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    patch = {"data": {"z": "1"}}
    status, patched = raw("PATCH", f"{path}/u", patch, "application/merge-patch+json", query=dry)
    assert status == 200 and patched["data"] == {"z": "1"}
    status, marked = raw("DELETE", f"{path}/u", query=dry)
    assert status == 200 and marked["metadata"]["deletionTimestamp"]
    assert kube.get_object("configmaps", "default", "u") == before


def test_concurrent_writers_get_unique_increasing_versions(kube: KubeSandbox, core) -> None:
    import threading

    from kubernetes import watch

    rv = core.list_namespaced_config_map("default").metadata.resource_version
    errors: list[Exception] = []

    def writer(k: int) -> None:
        try:
            for i in range(25):
                core.create_namespaced_config_map("default", {"metadata": {"name": f"w{k}-{i}"}})
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    versions = []
    stream = watch.Watch()
    for event in stream.stream(
        core.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=10
    ):
        versions.append(int(event["raw_object"]["metadata"]["resourceVersion"]))
        if len(versions) == 100:
            stream.stop()
    assert versions == sorted(set(versions))
    assert len(versions) == 100

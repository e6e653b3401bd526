"""Services as the registry writes them (defaults, a cluster IP, kept on update) and
watch lists (``sendInitialEvents``): what ``helm install --wait`` and ``kubectl wait``
rely on. Shapes from kube-apiserver 1.25.16 and 1.37.2 (tests/real/)."""

from __future__ import annotations

import ipaddress
import json

import pytest
import requests

from provisioner.sandbox.kube import KubeSandbox
from provisioner.sandbox.kube.services import SERVICE_RANGE

SVC = "/api/v1/namespaces/default/services"


def test_a_service_gets_its_defaults_and_a_cluster_ip(raw) -> None:
    status, svc = raw("POST", SVC, {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}})
    assert status == 201
    spec = svc["spec"]
    assert ipaddress.ip_address(spec["clusterIP"]) in SERVICE_RANGE
    assert spec["clusterIPs"] == [spec["clusterIP"]]
    assert spec["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    assert (spec["type"], spec["sessionAffinity"], spec["internalTrafficPolicy"]) == (
        "ClusterIP", "None", "Cluster",
    )  # fmt: skip
    assert (spec["ipFamilies"], spec["ipFamilyPolicy"]) == (["IPv4"], "SingleStack")
    assert svc["status"] == {"loadBalancer": {}}
    # an update that leaves the allocated address out keeps it
    body = {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 81}]}}
    status, updated = raw("PUT", f"{SVC}/web", body)
    assert status == 200 and updated["spec"]["clusterIP"] == spec["clusterIP"]
    status, other = raw(
        "POST", SVC, {"metadata": {"name": "api"}, "spec": {"ports": [{"port": 80}]}}
    )
    assert other["spec"]["clusterIP"] != spec["clusterIP"]


def test_a_dry_run_service_allocates_nothing(raw) -> None:
    body = {"metadata": {"name": "dry"}, "spec": {"ports": [{"port": 80}]}}
    status, svc = raw("POST", SVC, body, query=[("dryRun", "All")])
    assert status == 201 and svc["spec"]["clusterIP"] == str(SERVICE_RANGE.network_address)
    assert raw("GET", f"{SVC}/dry")[0] == 404


def test_node_ports_for_node_port_services(raw) -> None:
    body = {"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}}
    _, svc = raw("POST", SVC, body)
    assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767
    assert svc["spec"]["externalTrafficPolicy"] == "Cluster"


def _watch(kube: KubeSandbox, query: str) -> tuple[int, list[dict]]:
    r = requests.get(
        f"{kube.url}/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1&{query}",
        timeout=10,
    )
    lines = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    return r.status_code, lines


@pytest.mark.parametrize("version", ["1.25.16", "1.37.2"])
def test_watch_lists_where_the_release_has_them(version: str) -> None:
    """kubectl 1.37's ``wait`` asks for a watch list; a 1.25 server refuses the
    resourceVersionMatch it sends (so kubectl lists, then watches)."""
    asked = "sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    with KubeSandbox(version=version) as kube:
        kube.create_object("configmaps", {"metadata": {"name": "a"}}, "default")
        status, events = _watch(kube, asked)
        if version == "1.25.16":
            assert status == 422
            assert [c["message"] for c in events[0]["details"]["causes"]] == [
                "Forbidden: resourceVersionMatch is forbidden for watch",
                "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
            ]
            return
        assert status == 200
        assert [e["type"] for e in events[:2]] == ["ADDED", "BOOKMARK"]
        assert events[1]["object"]["metadata"]["annotations"] == {
            "k8s.io/initial-events-end": "true"
        }
        status, events = _watch(kube, "sendInitialEvents=true")
        assert status == 422
        assert events[0]["details"]["causes"][0]["message"] == (
            "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"
        )
        r = requests.get(
            f"{kube.url}/api/v1/namespaces/default/configmaps?sendInitialEvents=true", timeout=10
        )
        assert r.status_code == 422  # a list has no initial events

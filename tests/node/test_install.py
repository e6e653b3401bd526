"""Our image under Helm on a real node, as a user installs it: ``helm install`` of
charts/heketi-provisioner (the chart's default image ``heketi-provisioner:0.1.0``,
built here from our Dockerfile), the controller's pods Ready as uid 65532 with a
read-only root filesystem, one holding the Lease, ``/metrics`` served, claims
provisioned through in-cluster config (the ``kubernetes`` Service, kube-proxy), JSON
logs, and a leader pod deleted: SIGTERM releases the Lease, the other pod takes over,
claims made meanwhile bind, and no Heketi volume leaks.

Heketi runs with its mock executor here (no Gluster pool yet): claims bind, nothing
mounts them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from testbeds.harness.processes import local_get
from testbeds.node import Node
from testbeds.peers import RealHeketi
from tests.go_tools import go_tool

from .kubectl import NodeKubectl

RELEASE = NAMESPACE = "heketi-provisioner"  # the README's helm install command
CLASS = "glusterfs"  # the chart's default class
CLAIMS = "tenant"
IMAGE = "docker.io/library/heketi-provisioner:0.1.0"
WAIT = 180.0


@dataclass
class Release:
    pods: list[dict[str, Any]]
    deployment: dict[str, Any]
    grace: int


@pytest.fixture(scope="module")
def release(
    node: Node, kubectl: NodeKubectl, node_heketi: RealHeketi, node_heketi_url: str
) -> Iterator[Release]:
    helm = go_tool("helm")
    # the README's command, with this bed's Heketi URL and key
    kubectl.helm(
        helm,
        "install",
        RELEASE,
        "charts/heketi-provisioner",
        "-n",
        NAMESPACE,
        "--create-namespace",
        f"--set=heketi.url={node_heketi_url}",
        f"--set-string=heketi.key={node_heketi.admin_key}",
    )
    try:
        kubectl.run(
            "-n",
            NAMESPACE,
            "rollout",
            "status",
            "deployment/heketi-provisioner",
            "--timeout=240s",
            timeout=300,
        )
        deployment = kubectl.get("deployment", "heketi-provisioner", NAMESPACE)
        pods = _controller_pods(kubectl)
        grace = int(deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"])
        yield Release(pods, deployment, grace)
    finally:
        kubectl.run("delete", "namespace", CLAIMS, "--wait=true", "--timeout=120s", check=False)
        kubectl.helm(helm, "uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)
        kubectl.run("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s", check=False)


def _controller_pods(kubectl: NodeKubectl) -> list[dict[str, Any]]:
    pods = kubectl.get("pods", namespace=NAMESPACE)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def _ready(p: dict[str, Any]) -> bool:
    conditions = (p.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _lease(kubectl: NodeKubectl) -> dict[str, Any]:
    leases = kubectl.get("leases", namespace=NAMESPACE)["items"]
    held = [lease for lease in leases if lease["spec"].get("holderIdentity")]
    assert held, f"no Lease held in {NAMESPACE}: {leases}"
    (main,) = [lease for lease in held if "glusterblock" not in lease["metadata"]["name"]]
    return main


def _holder_pod(kubectl: NodeKubectl) -> str:
    return str(_lease(kubectl)["spec"]["holderIdentity"]).rsplit("_", 1)[0]


def _exec(kubectl: NodeKubectl, pod: str, *command: str) -> Any:
    return kubectl.run("exec", "-n", NAMESPACE, pod, "--", *command, check=False)


def test_the_pods_run_our_image_as_65532_with_a_read_only_root(
    kubectl: NodeKubectl, release: Release
) -> None:
    assert len(release.pods) == 2 and all(_ready(p) for p in release.pods)
    for p in release.pods:
        name = p["metadata"]["name"]
        (status,) = p["status"]["containerStatuses"]
        assert status["image"] == IMAGE and status["ready"], status
        ids = _exec(kubectl, name, "id")
        assert ids.stdout.startswith("uid=65532 gid=65532"), ids
        write = _exec(kubectl, name, "touch", "/usr/local/lib/x")
        assert write.returncode != 0 and "Read-only file system" in write.stderr, write
        # the chart's scratch volume is writable, the only place that is
        scratch = _exec(kubectl, name, "touch", "/tmp/x")
        assert scratch.returncode == 0, scratch
        # in-cluster config: no kubeconfig flag, the kubelet's service account token
        args = p["spec"]["containers"][0]["args"]
        assert not any(a.startswith("--kubeconfig") and a != "--kubeconfig=" for a in args)
        env = _exec(kubectl, name, "sh", "-c", "echo $KUBERNETES_SERVICE_HOST").stdout.strip()
        assert env == kubectl.node.ranges.service_ip


def test_one_pod_holds_the_lease_and_each_serves_metrics(
    kubectl: NodeKubectl, release: Release
) -> None:
    holder = _holder_pod(kubectl)
    names = {p["metadata"]["name"] for p in release.pods}
    assert holder in names, (holder, names)
    for p in release.pods:
        # the pod's address, over the bridge, from the host
        body = local_get(f"http://{p['status']['podIP']}:8080/metrics", timeout=10).text
        leader = 1.0 if p["metadata"]["name"] == holder else 0.0
        assert f"heketi_provisioner_leader {leader}" in body, body[:2000]


def _claim(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": CLAIMS},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": CLASS,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }


def _bound(kubectl: NodeKubectl, names: list[str]) -> dict[str, str] | None:
    claims = kubectl.get("pvc", namespace=CLAIMS)["items"]
    volumes = {
        c["metadata"]["name"]: c["spec"].get("volumeName", "")
        for c in claims
        if c["status"].get("phase") == "Bound"
    }
    return volumes if all(n in volumes for n in names) else None


def test_a_claim_binds_through_in_cluster_config_and_logs_are_json(
    kubectl: NodeKubectl, release: Release, node_heketi: RealHeketi
) -> None:
    kubectl.run("create", "namespace", CLAIMS, check=False)
    kubectl.apply(_claim("first"))
    volumes = kubectl.wait(lambda: _bound(kubectl, ["first"]), WAIT, "claim first Bound")
    pv = kubectl.get("pv", volumes["first"])
    volume_id = pv["metadata"]["annotations"]["gluster.kubernetes.io/heketi-volume-id"]
    assert node_heketi.request("GET", f"/volumes/{volume_id}").status_code == 200
    # the leader's log: JSON lines, one of which says it provisioned this claim
    logs = kubectl.run("logs", "-n", NAMESPACE, _holder_pod(kubectl)).stdout
    lines = [line for line in logs.splitlines() if line.strip()]
    assert lines
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(r, dict) and "event" in r for r in records), lines[:5]
    assert any("first" in json.dumps(r) for r in records), lines[-20:]
    assert node_heketi.admin_key not in logs


@dataclass
class LeaseWatch:
    """Every holderIdentity the Lease takes, with when this process saw it."""

    seen: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)


def _watch_lease(node: Node, name: str, since: str, watch: LeaseWatch) -> None:
    path = (
        f"/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases?watch=1"
        f"&fieldSelector=metadata.name%3D{name}&resourceVersion={since}&timeoutSeconds=120"
    )
    try:
        with node.kube.session.get(node.kube.server + path, stream=True, timeout=130) as r:
            for line in r.iter_lines():
                if watch.stop.is_set():
                    return
                if line:
                    event = json.loads(line)
                    holder = event["object"].get("spec", {}).get("holderIdentity") or ""
                    watch.seen.append((time.monotonic(), holder))
    except requests.RequestException:
        return  # the stream closed (the test is over, or the server ended it)


def test_deleting_the_leader_pod_hands_over_and_nothing_leaks(
    node: Node, kubectl: NodeKubectl, release: Release, node_heketi: RealHeketi
) -> None:
    kubectl.run("create", "namespace", CLAIMS, check=False)
    lease = _lease(kubectl)
    old_holder = str(lease["spec"]["holderIdentity"])
    leader = old_holder.rsplit("_", 1)[0]
    watch = LeaseWatch()
    watcher = threading.Thread(
        target=_watch_lease,
        args=(node, lease["metadata"]["name"], lease["metadata"]["resourceVersion"], watch),
        daemon=True,
    )
    watcher.start()
    deleted_at = time.monotonic()
    kubectl.run("delete", "pod", "-n", NAMESPACE, leader, "--wait=false")
    # claims made while the leader goes and the other pod takes over
    names = [f"during-{i}" for i in range(3)]
    kubectl.apply(*(_claim(n) for n in names))

    def new_holder() -> str | None:
        now = kubectl.get("lease", lease["metadata"]["name"], NAMESPACE)
        holder = str(now["spec"].get("holderIdentity") or "")
        return holder if holder and holder != old_holder else None

    holder = kubectl.wait(new_holder, WAIT, "another pod holds the Lease")
    assert holder.rsplit("_", 1)[0] != leader
    watch.stop.set()
    # SIGTERM made the leader hand the Lease back (holderIdentity "") before the
    # kubelet's SIGKILL at the end of the grace period: it did not merely expire
    released = [t for t, h in watch.seen if h == ""]
    assert released, f"the Lease was never released: {watch.seen}"
    assert released[0] - deleted_at < release.grace, (released[0] - deleted_at, release.grace)

    volumes = kubectl.wait(lambda: _bound(kubectl, names), WAIT, "claims made meanwhile Bound")
    # no duplicate and no leaked volume: one Heketi volume per PV, and the PVs'
    pv_ids = {
        kubectl.get("pv", v)["metadata"]["annotations"]["gluster.kubernetes.io/heketi-volume-id"]
        for v in _bound(kubectl, []).values()  # type: ignore[union-attr]
    }
    assert set(node_heketi.get("/volumes")["volumes"]) == pv_ids
    assert len(pv_ids) >= len(volumes)
    # a replacement pod comes up Ready (the Deployment keeps 2 replicas)
    kubectl.wait(
        lambda: len([p for p in _controller_pods(kubectl) if _ready(p)]) == 2,
        WAIT,
        "two controller pods Ready again",
    )
    # every claim goes, and every volume with it
    kubectl.run("delete", "pvc", "--all", "-n", CLAIMS, "--wait=true", "--timeout=120s")
    kubectl.wait(lambda: not kubectl.get("pv")["items"], WAIT, "every PV deleted")
    assert node_heketi.get("/volumes")["volumes"] == []

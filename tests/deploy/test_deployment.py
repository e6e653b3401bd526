"""The controller's Deployment: availability, probes, hardening, image."""

from __future__ import annotations

import configparser
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
METRICS_PORT = 8080


@pytest.fixture
def deployment(manifest: Callable[[str, str], dict[str, Any]]) -> dict[str, Any]:
    return manifest("deployment.yaml", "Deployment")


@pytest.fixture
def pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


@pytest.fixture
def container(pod: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod["containers"]
    return only


def _setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return cfg


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    for declared in container.get("ports", []):
        if declared.get("name") == port:
            return int(declared["containerPort"])
    raise AssertionError(f"port {port!r} is not declared by the container")


def test_two_replicas_rolled_one_at_a_time(deployment: dict[str, Any]) -> None:
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    strategy = spec["strategy"]
    assert strategy["type"] == "RollingUpdate"
    # Never a third pod contending for the Lease; one standby stays up.
    assert strategy["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}


def test_selector_matches_the_pod_labels(deployment: dict[str, Any]) -> None:
    selector = deployment["spec"]["selector"]["matchLabels"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector and selector.items() <= labels.items()


def test_metrics_service_selects_the_pods(
    deployment: dict[str, Any], manifest: Callable[[str, str], dict[str, Any]]
) -> None:
    service = manifest("metrics-service.yaml", "Service")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == METRICS_PORT
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert _port_number(container, port["targetPort"]) == METRICS_PORT


@pytest.mark.parametrize(
    ("probe", "path"), [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")]
)
def test_probes(container: dict[str, Any], probe: str, path: str) -> None:
    get = container[probe]["httpGet"]
    assert get["path"] == path
    assert _port_number(container, get["port"]) == METRICS_PORT
    assert get.get("scheme", "HTTP") == "HTTP"


def test_metrics_address_flag_serves_the_probed_port(container: dict[str, Any]) -> None:
    args = container["args"]
    (address,) = [a.split("=", 1)[1] for a in args if a.startswith("--metrics-address=")]
    assert address.rsplit(":", 1)[1] == str(METRICS_PORT)
    assert {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"} in container[
        "ports"
    ]


def test_provisioner_name_flag(container: dict[str, Any]) -> None:
    assert "--provisioner-name=gluster.org/heketi" in container["args"]
    assert "--log-format=json" in container["args"]


def test_command_is_left_to_the_image_entrypoint(container: dict[str, Any]) -> None:
    # `command` would replace ENTRYPOINT ["heketi-provisioner", "run"].
    assert "command" not in container


def test_downward_api_for_leader_election(container: dict[str, Any]) -> None:
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_container_security_context(container: dict[str, Any]) -> None:
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 65532
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not sc.get("privileged", False)


def test_pod_security_context(pod: dict[str, Any]) -> None:
    sc = pod["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 65532
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key, False)


def test_writable_tmp_despite_read_only_root(
    pod: dict[str, Any], container: dict[str, Any]
) -> None:
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_resources(container: dict[str, Any]) -> None:
    resources = container["resources"]
    assert resources["requests"] == {"cpu": "50m", "memory": "96Mi"}
    assert resources["limits"]["memory"] == "256Mi"


def test_grace_period_and_service_account(pod: dict[str, Any]) -> None:
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["serviceAccountName"] == "heketi-provisioner"


def test_shutdown_grace_ends_before_the_kill(
    pod: dict[str, Any], container: dict[str, Any]
) -> None:
    """In-flight work must stop before the kubelet's SIGKILL, with time to spare."""
    (grace,) = [a.split("=", 1)[1] for a in container["args"] if a.startswith("--shutdown-grace=")]
    assert 0 < float(grace) <= pod["terminationGracePeriodSeconds"] - 5


def test_image_is_pinned_to_the_package_version(container: dict[str, Any]) -> None:
    image = container["image"]
    name, _, tag = image.rpartition(":")
    assert name == "heketi-provisioner"
    assert tag and tag != "latest"
    assert tag == _setup_cfg()["metadata"]["version"]
    assert container["imagePullPolicy"] != "Always"


def test_no_manifest_uses_latest(manifests_dir: Path) -> None:
    for path in manifests_dir.glob("*.yaml"):
        assert ":latest" not in path.read_text(), path.name

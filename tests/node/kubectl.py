"""kubectl and helm against the node bed, as the cluster admin, the way a user types
them; plus waiting on what they report (a condition polled with a deadline)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from testbeds.harness.controller import kubectl_binary
from testbeds.harness.processes import wait_for
from testbeds.node import Node
from testbeds.peers import REPO

T = TypeVar("T")


class NodeKubectl:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.kubeconfig = node.kube.admin_kubeconfig
        self.binary = kubectl_binary()

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "HELM_"))}
        scratch = self.node.workdir / "helm"
        env.update(
            KUBECONFIG=str(self.kubeconfig),
            HELM_CACHE_HOME=str(scratch / "cache"),
            HELM_CONFIG_HOME=str(scratch / "config"),
            HELM_DATA_HOME=str(scratch / "data"),
        )
        return env

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [self.binary, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            env=self._env(),
        )
        if check and out.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)}: exit {out.returncode}\n{out.stderr}{out.stdout}"
            )
        return out

    def helm(
        self, helm: str, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [helm, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            env=self._env(),
        )
        if check and out.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)}: exit {out.returncode}\n{out.stderr}")
        return out

    def apply(self, *docs: dict[str, Any]) -> None:
        self.run("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))

    def get(self, kind: str, name: str = "", namespace: str = "") -> Any:
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        return json.loads(self.run(*args).stdout)

    def get_or_none(self, kind: str, name: str, namespace: str = "") -> Any:
        args = ["get", kind, name, "-o", "json", "--ignore-not-found"]
        if namespace:
            args += ["-n", namespace]
        out = self.run(*args).stdout.strip()
        return json.loads(out) if out else None

    def wait(self, condition: Callable[[], T | None], timeout: float, what: str) -> T:
        return wait_for(condition, timeout, what, interval=0.5, check=self._bed_alive)

    def _bed_alive(self) -> None:
        for proc in self.node.processes():
            proc.check_running()

    def pod_phase(self, name: str, namespace: str) -> str:
        pod = self.get_or_none("pod", name, namespace) or {}
        return str((pod.get("status") or {}).get("phase") or "")

    def wait_pod_phase(
        self, name: str, namespace: str, phases: tuple[str, ...], timeout: float = 120
    ) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            pod = self.get_or_none("pod", name, namespace)
            phase = ((pod or {}).get("status") or {}).get("phase")
            return pod if phase in phases else None

        try:
            return self.wait(reached, timeout, f"pod {namespace}/{name} {'/'.join(phases)}")
        except TimeoutError as e:
            described = self.run("describe", "pod", name, "-n", namespace, check=False).stdout
            raise AssertionError(f"{e}\n{described}") from None


def pod(
    name: str,
    *,
    image: str = "busybox:1.35",
    command: list[str],
    uid: int = 1000,
    volumes: list[dict[str, Any]] | None = None,
    mounts: list[dict[str, Any]] | None = None,
    restart: str = "Never",
) -> dict[str, Any]:
    """A pod a tenant would write: non-root, no privilege escalation, read-only root."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": restart,
            "securityContext": {"runAsUser": uid, "runAsGroup": uid, "runAsNonRoot": True},
            "containers": [
                {
                    "name": "main",
                    "image": image,
                    "command": command,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "volumeMounts": mounts or [],
                }
            ],
            "volumes": volumes or [],
            "terminationGracePeriodSeconds": 5,
        },
    }


def log_file(node: Node, name: str) -> Path:
    return node.workdir / f"{name}.log"

"""A 403 at startup (the Lease, a cache's first list) ends ``run`` with one line naming
the missing permission and exit status 1, not a traceback or an endless retry.

The sandbox has no authorizer; ``Faults.deny`` answers 403 in the RBAC authorizer's
words. tests/real/test_startup_forbidden.py does the same under real RBAC."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from provisioner.k8s.errors import KubeForbidden, error_from_status
from provisioner.sandbox.kube import KubeSandbox

USER = "system:serviceaccount:storage:provisioner"


@pytest.fixture
def kube() -> Iterator[KubeSandbox]:
    with KubeSandbox(version="1.30.0") as sandbox:
        sandbox.create_object(
            "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "storage"}}
        )
        yield sandbox


def _run(kube: KubeSandbox, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEKETI_PROVISIONER_")}
    return subprocess.run(
        [sys.executable, "-m", "provisioner", "run", "--kubeconfig", str(kube.kubeconfig_path),
         "--namespace", "storage", "--metrics-address", "", *flags],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def _error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if "error:" in line]


@pytest.mark.parametrize(
    ("resource", "flags", "expected"),
    [
        (
            "persistentvolumeclaims",
            ("--no-leader-election",),
            f"{USER} may not list persistentvolumeclaims (all namespaces)",
        ),
        (
            "leases",
            (),
            f'{USER} may not get leases.coordination.k8s.io in namespace "storage"',
        ),
    ],
)
def test_one_line_naming_the_permission_and_exit_1(
    kube: KubeSandbox, resource: str, flags: tuple[str, ...], expected: str
) -> None:
    kube.faults.deny(resource, user=USER)
    result = _run(kube, *flags)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    (line,) = _error_lines(result)
    assert line == (
        f"heketi-provisioner: error: forbidden: {expected}; grant it in the controller's "
        "RBAC (manifests/rbac.yaml, or the Helm chart's)"
    )


def test_forbidden_parses_both_scopes_and_keeps_other_shapes() -> None:
    namespaced = error_from_status(
        403,
        b'{"reason":"Forbidden","message":"leases.coordination.k8s.io \\"x\\" is forbidden: '
        b'User \\"u\\" cannot update resource \\"leases\\" in API group '
        b'\\"coordination.k8s.io\\" in the namespace \\"ns\\""}',
    )
    assert isinstance(namespaced, KubeForbidden)
    assert namespaced.permission == 'update leases.coordination.k8s.io in namespace "ns"'
    assert namespaced.user == "u"
    other = error_from_status(403, b'{"reason":"Forbidden","message":"webhook said no"}')
    assert isinstance(other, KubeForbidden)
    assert other.verb == "" and other.permission == "webhook said no"


def test_a_standby_refused_its_warm_up_lists_exits_too(kube: KubeSandbox) -> None:
    """With leader election, the caches are filled while standing by: a refused list
    there ends the process the same way (it could never take over)."""
    kube.faults.deny("storageclasses", {"list"}, user=USER)
    result = _run(kube)
    assert result.returncode == 1, result.stderr[-2000:]
    (line,) = _error_lines(result)
    assert f"{USER} may not list storageclasses.storage.k8s.io (all namespaces)" in line

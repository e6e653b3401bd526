"""Startup without the RBAC of manifests/ on a real authorizer: ``run`` ends with one
line naming the refused verb, resource and namespace, and exit status 1."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from testbeds.peers import RealKube

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        # with election, the Lease read and the standby's warm-up lists race: either
        ((), r'may not (get leases\.coordination\.k8s\.io in namespace "bare"|list \S+ \(all)'),
        (("--no-leader-election",), r"may not list \S+ \(all namespaces\)"),
    ],
)
def test_a_serviceaccount_without_rbac_gets_one_line(
    real_kube: RealKube, flags: tuple[str, ...], expected: str
) -> None:
    kubeconfig = real_kube.mint_serviceaccount_kubeconfig("bare", "nobody")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEKETI_PROVISIONER_")}
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", "run", "--kubeconfig", str(kubeconfig),
         "--namespace", "bare", "--metrics-address", "", *flags],
        capture_output=True, text=True, timeout=90, env=env,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr[-2000:]
    assert errors[0].startswith(
        "heketi-provisioner: error: forbidden: system:serviceaccount:bare:nobody "
    )
    assert re.search(expected, errors[0]), errors[0]

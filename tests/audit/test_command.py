"""``audit_main``: output formats, exit codes, and the key kept out of every output."""

from __future__ import annotations

import argparse
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from provisioner.audit.command import KEY_ENV, add_audit_arguments, audit_main
from provisioner.sandbox.kube import KubeSandbox

from .conftest import ADMIN_KEY, NAMESPACE, PROVISIONER, Cluster

STABLE_KEYS = {
    "orphans",
    "missing_volumes",
    "duplicates",
    "missing_endpoints",
    "missing_services",
    "gid_collisions",
    "heketi_volumes",
    "pvs",
    "problems",
}


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """``audit_main`` points structlog, and the root logger's handler, at this test's
    (captured) stderr and sets log levels: undo all of that."""
    saved = structlog.get_config()
    root, ours = logging.getLogger(), logging.getLogger("provisioner")
    handlers, levels = list(root.handlers), (root.level, ours.level)
    yield
    structlog.configure(**saved)
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(levels[0])
    ours.setLevel(levels[1])


@pytest.fixture(autouse=True)
def _fast_heketi_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command's own pool retries for seconds; the tests want one quick attempt."""
    from provisioner.audit import compare

    from .conftest import fast_pool

    monkeypatch.setattr(compare, "HeketiPool", lambda **_: fast_pool())


def parse(cluster: Cluster, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="heketi-provisioner audit")
    add_audit_arguments(parser)
    return parser.parse_args(
        [
            "--kubeconfig",
            str(cluster.sandbox.kubeconfig_path),
            "--provisioner-name",
            PROVISIONER,
            *extra,
        ]
    )


def run(cluster: Cluster, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what the set-up printed (structlog's default is stdout)
    code = audit_main(parse(cluster, *extra))
    out, err = capsys.readouterr()
    return code, out, err


def test_clean_state_exits_0_with_a_table(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.provisioned(cluster.storage_class())
    code, out, _ = run(cluster, capsys)
    assert code == 0
    assert "no problems found" in out
    assert cluster.sim.url in out


def test_json_has_the_stable_keys(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.provisioned(cluster.storage_class())
    code, out, _ = run(cluster, capsys, "-o", "json")
    data = json.loads(out)
    assert code == 0
    assert set(data) >= STABLE_KEYS
    assert (data["pvs"], data["heketi_volumes"], data["problems"]) == (1, 1, 0)
    assert all(data[key] == [] for key in STABLE_KEYS - {"pvs", "heketi_volumes", "problems"})
    assert data["errors"] == [] and data["complete"] is True


def test_problems_exit_1_and_appear_in_json(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    sc = cluster.storage_class()
    _, pv = cluster.provisioned(sc)
    cluster.kube.delete("endpoints", pv["spec"]["glusterfs"]["endpoints"], NAMESPACE)
    orphan = cluster.heketi_volume(f"pvc-{uuid.uuid4()}")

    code, out, _ = run(cluster, capsys, "-o", "json")

    data = json.loads(out)
    assert code == 1
    assert data["problems"] == 2
    assert [o["volume_id"] for o in data["orphans"]] == [orphan.id]
    assert [m["pv"] for m in data["missing_endpoints"]] == [pv["metadata"]["name"]]
    assert set(data["orphans"][0]) == {
        "server",
        "volume_id",
        "volume_name",
        "claim_uid",
        "claim",
    }


def test_unreachable_heketi_exits_2_and_says_which(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.provisioned(cluster.storage_class())
    cluster.sim.down()
    code, out, _ = run(cluster, capsys)
    assert code == 2
    assert f"Heketi at {cluster.sim.url}: unreachable" in out
    assert "could not be checked" in out


def test_unreachable_kubernetes_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    with KubeSandbox(kubeconfig_path=kubeconfig):
        pass  # the file stays, the server is gone
    parser = argparse.ArgumentParser()
    add_audit_arguments(parser)
    assert audit_main(parser.parse_args(["--kubeconfig", str(kubeconfig)])) == 2
    _, err = capsys.readouterr()
    assert "cannot read from the Kubernetes API" in err


def test_missing_kubeconfig_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_audit_arguments(parser)
    assert audit_main(parser.parse_args(["--kubeconfig", str(tmp_path / "none")])) == 2
    assert capsys.readouterr().err.startswith("audit: ")


def test_key_file_audits_a_server_without_pvs(
    cluster: Cluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    orphan = cluster.heketi_volume(f"pvc-{uuid.uuid4()}")
    key_file = tmp_path / "key"
    key_file.write_text(ADMIN_KEY + "\n")
    code, out, _ = run(
        cluster, capsys, "--heketi-url", cluster.sim.url, "--heketi-key-file", str(key_file)
    )
    assert code == 1
    assert orphan.id in out


def test_key_from_the_environment(
    cluster: Cluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster.heketi_volume(f"pvc-{uuid.uuid4()}")
    monkeypatch.setenv(KEY_ENV, ADMIN_KEY)
    code, out, _ = run(cluster, capsys, "--heketi-url", cluster.sim.url, "-o", "json")
    assert code == 1
    assert len(json.loads(out)["orphans"]) == 1


def test_wrong_key_exits_2(cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.heketi_volume(f"pvc-{uuid.uuid4()}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_ENV, "not-the-key-0123456789abcdef0123456789")
        code, out, _ = run(cluster, capsys, "--heketi-url", cluster.sim.url)
    assert code == 2
    assert "credentials refused" in out


def test_unreadable_key_file_exits_2(
    cluster: Cluster, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run(cluster, capsys, "--heketi-key-file", str(tmp_path / "absent"))
    assert code == 2
    assert "--heketi-key-file" in err


@pytest.mark.parametrize("output", ["table", "json"])
def test_the_key_is_never_printed_or_logged(
    cluster: Cluster,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    output: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    sc = cluster.storage_class()
    _, pv = cluster.provisioned(sc)
    cluster.kube.delete("services", pv["spec"]["glusterfs"]["endpoints"], NAMESPACE)
    cluster.heketi_volume(f"pvc-{uuid.uuid4()}")
    key_file = tmp_path / "key"
    key_file.write_text(ADMIN_KEY)
    outputs = []
    for extra in (
        ("--heketi-url", cluster.sim.url, "--heketi-key-file", str(key_file)),
        ("--heketi-url", "http://127.0.0.1:1", "--heketi-key-file", str(key_file)),
    ):
        outputs.append(run(cluster, capsys, "-o", output, *extra))
    cluster.sim.down()
    outputs.append(run(cluster, capsys, "-o", output))
    assert [code for code, _, _ in outputs] == [1, 2, 2]
    for _, out, err in outputs:
        assert ADMIN_KEY not in out and ADMIN_KEY not in err
    assert ADMIN_KEY not in caplog.text

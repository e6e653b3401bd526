"""A killed run leaves nothing that ``python -m testbeds.node down`` does not remove.

``up`` is started as a user starts it, a pod is run on it (so there are containers,
a sandbox's network namespace, veths, volume mounts, kube-proxy's rules), then the
``up`` process is SIGKILLed: what it started (etcd, the API server, containerd, the
kubelet, ...; each in a session of its own) and the pod live on, as after a killed
CI job. ``down`` must then leave nothing of the bed: no
process, mount, link, iptables rule, cgroup or directory.

This module runs before the session's node bed starts (one bed per machine): it
uses the node's binaries, not the ``node`` fixture.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

from testbeds.harness.controller import kubectl_binary
from testbeds.harness.processes import wait_for
from testbeds.node import cleanup
from testbeds.node.bed import exclusive
from testbeds.peers import REPO, Peers

from .kubectl import pod


def test_down_removes_what_a_killed_up_left(node_peers: Peers, tmp_path: Path) -> None:
    # an earlier killed run (a stopped session, a killed CI job) may have left the
    # bed's links, rules and directories: removed first, as ``start_node`` does, so
    # what is found after the kill below is this test's own
    with exclusive():
        cleanup.clean(kube_proxy=node_peers.path("KUBE_PROXY_125"))
    assert cleanup.leftovers() == [], "the machine is not clean before the test"
    log = open(tmp_path / "up.log", "w")  # noqa: SIM115 - closed below
    up = subprocess.Popen(
        [sys.executable, "-m", "testbeds.node", "up", f"--workdir={tmp_path / 'bed'}"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,
    )
    killed = False
    try:
        state: dict[str, str] = {}
        assert up.stdout is not None
        for line in up.stdout:  # key=value lines, printed once the bed is up
            key, _, value = line.strip().partition("=")
            state[key] = value
            if key == "heketi_admin_key":
                break
        assert "kubeconfig" in state, (tmp_path / "up.log").read_text()[-3000:]
        env = {**os.environ, "KUBECONFIG": state["kubeconfig"]}
        manifest = pod(
            "sleeper",
            command=["sh", "-c", "echo up > /data/f; sleep 3600"],
            volumes=[{"name": "data", "emptyDir": {}}],
            mounts=[{"name": "data", "mountPath": "/data"}],
        )
        kubectl = kubectl_binary()
        subprocess.run(
            [kubectl, "apply", "-f", "-"],
            input=yaml.safe_dump(manifest),
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )

        def running() -> bool:
            out = subprocess.run(
                [kubectl, "get", "pod", "sleeper", "-o", "json"],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
            )
            return json.loads(out.stdout or "{}").get("status", {}).get("phase") == "Running"

        wait_for(running, 180, "pod sleeper Running")
        held = cleanup.leftovers()
        assert any(h.startswith("pod process") for h in held), held
        assert any(h.startswith("mount ") for h in held), held

        # -- the kill: `up` alone, as when a CI job's runner is killed; what it started
        # (each in a session of its own) lives on, the containers with it
        up.kill()
        up.wait(30)
        killed = True
        assert cleanup.leftovers(), "a killed run left nothing: the kill did not happen"
    finally:
        if not killed and up.poll() is None:
            up.send_signal(signal.SIGTERM)
            up.wait(180)
        log.close()

    down = subprocess.run(
        [sys.executable, "-m", "testbeds.node", "down"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert down.returncode == 0, down.stderr
    assert "removed mount" in down.stdout and "removed link" in down.stdout, down.stdout
    assert cleanup.leftovers() == [], down.stdout

"""Requests one resize and one clone cost: Heketi's and the Kubernetes API's, by route.

Runs the embedded sandbox as a 1.37 API server (--assume-glusterfs-plugin), provisions
a 1Gi claim of an expandable class, then

* grows it to 3Gi and waits until the claim's status shows 3Gi;
* clones it into a 4Gi claim and waits until that is Bound.

For each operation it prints the Heketi simulator's request log and the API sandbox's
request log (the controller's requests only: the script itself reads through the
sandbox's Python side and writes one object per step) between the user's write and
the end state, as counts by "METHOD route status" and "verb resource". The controller
also reads the Secret and writes events; those are counted too.

    python bench/resize_clone_requests.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.config import Settings
from provisioner.k8s.kubeapi import KubeAPI, load_api_client
from provisioner.observability import configure_logging
from provisioner.sandbox.stack import SandboxStack, StackOptions
from provisioner.sandbox.waiting import wait_for
from tests.builders import claim_body, class_body, secret_body

KEY = "bench-admin-key-0123456789abcdef0123"
NS = "default"
AGENT = "heketi-provisioner/"


def heketi_counts(stack: SandboxStack) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for r in stack.heketi.requests:
        route = r.route if r.route.startswith(f"{r.method} ") else f"{r.method} {r.route}"
        counts[f"{route} {'dropped' if r.status is None else r.status}"] += 1
    return dict(sorted(counts.items()))


def kube_counts(stack: SandboxStack) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for r in stack.kube.request_log:
        if not r.user_agent.startswith(AGENT) or r.verb == "watch":
            continue
        resource = f"{r.resource}/{r.subresource}" if r.subresource else r.resource
        counts[f"{r.verb} {resource}"] += 1
    return dict(sorted(counts.items()))


def measure(stack: SandboxStack, act: Any, done: Any, what: str) -> dict[str, Any]:
    stack.heketi.reset_requests()
    stack.kube.clear_request_log()
    act()
    wait_for(done, 30, what)
    stack.kube.wait_idle()
    heketi, kube = heketi_counts(stack), kube_counts(stack)
    return {
        "heketi": heketi,
        "heketi_total": sum(heketi.values()),
        "kube": kube,
        "kube_total": sum(kube.values()),
    }


def run() -> dict[str, Any]:
    settings = Settings(metrics_address="", assume_glusterfs_plugin=True, resync_period=600.0)
    with tempfile.TemporaryDirectory() as tmp:
        stack = SandboxStack(
            StackOptions(
                kubeconfig_out=str(Path(tmp) / "kubeconfig"),
                kube_version="1.37.2",
                heketi_admin_key=KEY,
                settings=replace(settings),
            )
        )
        stack.start()
        try:
            user = KubeAPI(load_api_client(stack.kubeconfig_path))
            user.api_client.user_agent = "bench/1"
            user.create("secrets", secret_body("heketi", NS, KEY), NS)
            body = class_body("grow", stack.heketi.url, secret=(NS, "heketi"))
            body["allowVolumeExpansion"] = True
            user.create("storageclasses", body)
            user.create("persistentvolumeclaims", claim_body("data", NS, "grow"), NS)

            def claim(name: str) -> dict[str, Any]:
                return stack.kube.get_object("persistentvolumeclaims", NS, name) or {}

            def capacity(name: str) -> str:
                return str((claim(name).get("status") or {}).get("capacity", {}).get("storage"))

            def said(name: str, reason: str) -> bool:
                """An operation's last write is its event: wait for it too."""
                return any(
                    e.get("reason") == reason and e["involvedObject"].get("name") == name
                    for e in stack.kube.list_objects("events", NS)
                )

            wait_for(lambda: said("data", "ProvisioningSucceeded"), 30, "data provisioned")
            grow = measure(
                stack,
                lambda: user.patch(
                    "persistentvolumeclaims",
                    "data",
                    {"spec": {"resources": {"requests": {"storage": "3Gi"}}}},
                    NS,
                ),
                lambda: capacity("data") == "3Gi" and said("data", "VolumeResizeSuccessful"),
                "data at 3Gi",
            )
            source = {"kind": "PersistentVolumeClaim", "name": "data"}
            clone = measure(
                stack,
                lambda: user.create(
                    "persistentvolumeclaims",
                    claim_body("copy", NS, "grow", size="4Gi", dataSource=source),
                    NS,
                ),
                lambda: capacity("copy") == "4Gi" and said("copy", "ProvisioningSucceeded"),
                "copy Bound at 4Gi",
            )
            return {"resize_1_to_3_gib": grow, "clone_1_gib_into_4_gib": clone}
        finally:
            stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    configure_logging("json", "warning", stream=sys.stderr)  # stdout holds the figures
    figures = run()
    if args.json:
        print(json.dumps(figures, sort_keys=True))
        return 0
    for operation, counts in figures.items():
        print(f"{operation}: {counts['heketi_total']} Heketi requests, "
              f"{counts['kube_total']} Kubernetes requests (watches not counted)")  # fmt: skip
        for key in ("heketi", "kube"):
            for route, n in counts[key].items():
                print(f"  {key:6} {n:3}  {route}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The Heketi key never shows: not in the process's output, events, errors or metrics.

Runs provisioning, deletion and failures (a wrong key's 401, an HTML resturl, Heketi
down, a 500 whose text is Heketi's) with a recognisable key, at debug log level, then
searches everything the controller produced or caused.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from provisioner.audit.compare import run_audit

if TYPE_CHECKING:
    from conftest import World

CANARY_FRAGMENT = "c4n4ry-7f3e"  # also catches a key cut short or wrapped


class _Html(BaseHTTPRequestHandler):
    def _page(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<html><body>login</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _page

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_the_key_appears_nowhere(world: World) -> None:
    assert CANARY_FRAGMENT in world.admin_key
    html = ThreadingHTTPServer(("127.0.0.1", 0), _Html)
    threading.Thread(target=html.serve_forever, args=(0.05,), daemon=True).start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = world.controller(metrics_port=port, log_level="debug").start()
    controller.wait_started()
    try:
        sc = world.storage_class()
        good = [world.claim(sc)["metadata"]["name"] for _ in range(3)]
        for name in good:
            world.bound_pv(name)
        # A 500 from Heketi, a wrong key (401), an HTML page instead of Heketi.
        world.sim.faults.fail_next("volume_create", status=500, text="Injected: disk on fire")
        failing = world.claim(sc)
        wrong = world.storage_class(secret=world.secret(key="KEY-wrong-0123456789abcdef0123456"))
        refused = world.claim(wrong, expect_bound=False)
        html_class = world.storage_class(resturl=f"http://127.0.0.1:{html.server_address[1]}")
        fooled = world.claim(html_class, expect_bound=False)
        world.wait_warning(failing["metadata"]["uid"], "disk on fire")
        world.wait_warning(refused["metadata"]["uid"], "401")
        world.wait_warning(fooled["metadata"]["uid"], "text/html")
        # Heketi down during a delete: a VolumeFailedDelete with the connection error.
        world.sim.down()
        world.delete_claim(good[0])
        world.wait_for(
            lambda: any(
                e.get("reason") == "VolumeFailedDelete"
                for e in world.sandbox.list_objects("events")
            ),
            60,
            "a VolumeFailedDelete event",
        )
        world.sim.up()
        world.delete_claim(good[1])
        for name in (wrong, html_class):
            world.delete_class(name)
        report = world.converge()
        status, metrics = controller.http_get("/metrics")
        assert status == 200 and "controller_persistentvolumeclaim_provision_total" in metrics
    finally:
        html.shutdown()
        html.server_close()
    controller.terminate()

    events = json.dumps(world.sandbox.list_objects("events"))
    searched = {
        "process output": controller.output(),
        "events": events,
        "metrics": metrics,
        "audit report": repr(report) + repr(run_audit(world.kube, provisioner_name="x")),
        "objects": json.dumps(
            [world.sandbox.list_objects(r) for r in ("persistentvolumes", "persistentvolumeclaims",
                                                     "endpoints", "services", "storageclasses")]
        ),
    }  # fmt: skip
    assert "VolumeFailedDelete" in events and "disk on fire" in events
    assert '"provision.failed"' in searched["process output"]  # failures were logged
    for where, text in searched.items():
        assert CANARY_FRAGMENT not in text, f"the key leaked into {where}"

"""Tenant strings reach events and console logs with their control characters escaped.

Hole 7 of issue 23: ``spec.dataSource.name`` (the API server checks only that it is
not empty) and other tenant strings were quoted in events and log lines as they were.
With ``--log-format console`` a tenant could start a new line that reads like one of
the controller's own, or send ANSI escapes to whoever tails the log.
"""

from __future__ import annotations

import re

from provisioner.sandbox.waiting import wait_for

from .conftest import TENANT, World

FORGED = "2031-01-01T00:00:00Z [warning  ] orphan.reclaimed  heketi_volume=vol_all"
HOSTILE = f"db\n{FORGED}\r\x1b[2K\x1b[31mred\u202etxt.exe"


def _has_controls(text: str) -> bool:
    return bool(re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]", text))


def test_a_data_source_name_cannot_forge_log_lines_or_events(world: World) -> None:
    sc = world.storage_class("gluster")
    controller = world.start_controller("--log-format", "console")
    ref = {"kind": "PersistentVolumeClaim", "name": HOSTILE}
    world.tenant.claim("copy", sc, dataSource=ref)

    message, pv = world.warning_or_pv(TENANT, "copy")
    assert not pv
    assert "orphan.reclaimed" in message, message  # the name is quoted...
    assert not _has_controls(message), repr(message)  # ...escaped
    assert "\\n" in message and "\\x1b" in message and "\\u202e" in message, message

    def quoted_in_log() -> str | None:
        out = controller.output()
        return out if "heketi_volume=vol_all" in out else None

    out = wait_for(quoted_in_log, 20, "the refusal in the controller's log")
    for line in out.splitlines():
        assert not line.startswith(FORGED[:20]), f"a forged line: {line!r}"
        assert not _has_controls(line.replace("\t", "")), f"control characters: {line!r}"

"""The JSON lines of one provision and one delete, as a log collector receives them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
import structlog

from provisioner.observability import configure_logging

if TYPE_CHECKING:
    from conftest import World

ADMIN_KEY = "observability-admin-key-0123456789"
CONTEXT = ("namespace", "claim", "class", "volume")


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root, ours = logging.getLogger(), logging.getLogger("provisioner")
    handlers, levels = list(root.handlers), (root.level, ours.level)
    saved = structlog.get_config()
    configure_logging("json", "debug", stream=stream)
    yield stream
    structlog.configure(**saved)
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(levels[0])
    ours.setLevel(levels[1])


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_every_line_about_the_claim_carries_its_context(
    world: World, log_stream: io.StringIO
) -> None:
    controller = world.build()
    controller.start()
    sc = world.storage_class()
    claim = world.claim(sc)
    name = claim["metadata"]["name"]
    pv = world.bound_pv(claim)
    world.delete_claim_and_wait(claim, pv)
    controller.stop(grace=2.0)

    records = lines(log_stream)
    expected = {
        "namespace": "default",
        "claim": name,
        "class": sc,
        "volume": pv["metadata"]["name"],
    }
    about = [r for r in records if r.get("claim") == name or r.get("volume") == expected["volume"]]
    # Heketi requests (heketi_client's stdlib lines), the Gluster backend's events, the
    # summaries: all of them.
    events = {r["event"] for r in about}
    assert any(e.startswith("heketi request") for e in events), events
    assert any(str(r.get("logger")).startswith("heketi_client.") for r in about), events
    assert "heketi_volume.created" in events, events
    for record in about:
        assert {k: record.get(k) for k in CONTEXT} == expected, record

    (provisioned,) = [r for r in about if r["event"].startswith("provision.")]
    assert provisioned["event"] == "provision.succeeded"
    assert isinstance(provisioned["duration"], float) and provisioned["level"] == "info"
    (deleted,) = [r for r in about if r["event"].startswith("delete.")]
    assert deleted["event"] == "delete.succeeded" and isinstance(deleted["duration"], float)

    # Lines outside a work item carry no stale claim context.
    started = [r for r in records if r["event"] == "controller.started"]
    assert started and "claim" not in started[0]
    assert ADMIN_KEY not in log_stream.getvalue()


@pytest.fixture
def console_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    saved = structlog.get_config()
    configure_logging("console", "info", stream=stream)
    yield stream
    structlog.configure(**saved)
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


HOSTILE = "db\n2031-01-01 [info     ] forged.line\r\x1b[31mred\u202etxt\u2028x"


def test_console_lines_escape_control_characters(console_stream: io.StringIO) -> None:
    structlog.get_logger("provisioner.test").warning(
        f"claim.refused {HOSTILE}", source=HOSTILE, nested=[HOSTILE]
    )
    logging.getLogger("heketi_client.test").warning("stdlib %s", HOSTILE)
    out = console_stream.getvalue()
    assert out.count("\n") == 2, out  # one line each, whatever the fields held
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out and "\u2028" not in out
    assert out.count("\\n2031-01-01 [info     ] forged.line\\r\\x1b[31mred\\u202etxt\\u2028x") >= 3


def test_json_lines_are_left_to_json_escaping(log_stream: io.StringIO) -> None:
    structlog.get_logger("provisioner.test").warning("claim.refused", source=HOSTILE)
    (record,) = lines(log_stream)
    assert record["source"] == HOSTILE  # escaped on the wire, the same string read back


def test_escape_controls_keeps_printable_text() -> None:
    from provisioner.observability import escape_controls

    assert escape_controls("naïve ü 日本 \\n") == "naïve ü 日本 \\n"
    assert escape_controls("a\tb\x00c\x7f\x9b") == "a\\tb\\x00c\\x7f\\x9b"

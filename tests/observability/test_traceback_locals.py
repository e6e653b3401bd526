"""Logged tracebacks never show local variables: a frame that handles a request holds
the Heketi key in one, and rich's traceback (structlog's console default when rich is
installed) printed it. ``_redact`` cannot help there: it sees fields, not frames."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from provisioner.observability import configure_logging

CANARY = "canary-heketi-key-7d41c0a9e2"


def _request_failing_with_the_key_in_a_local() -> None:
    heketi_key = CANARY.upper().lower()  # a value, not a name the source shows
    raise RuntimeError(f"Heketi answered 500 ({len(heketi_key)}-character key)")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, ours = logging.getLogger(), logging.getLogger("provisioner")
    handlers, levels = list(root.handlers), (root.level, ours.level)
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    for handler in [h for h in handlers if h not in root.handlers]:
        root.addHandler(handler)
    root.setLevel(levels[0])
    ours.setLevel(levels[1])


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("rich", ["installed", "absent"])
@pytest.mark.parametrize("log_format", ["console", "json"])
def test_logged_exceptions_do_not_print_locals(
    log_format: str, rich: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if rich == "installed":
        pytest.importorskip("rich")
    else:
        monkeypatch.setitem(sys.modules, "rich", None)  # import rich -> ImportError
    stream = io.StringIO()
    configure_logging(log_format, "info", stream=stream)

    try:
        _request_failing_with_the_key_in_a_local()
    except RuntimeError:
        structlog.get_logger("provisioner.test").exception("provision.failed")
    try:
        _request_failing_with_the_key_in_a_local()
    except RuntimeError:
        logging.getLogger("provisioner.gluster").exception("heketi request failed")

    out = stream.getvalue()
    # The tracebacks are there (two of them), only without the frames' variables.
    assert out.count("_request_failing_with_the_key_in_a_local") >= 2, out
    assert "Heketi answered 500" in out
    assert CANARY not in out, out

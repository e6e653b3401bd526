"""Bad input that ``tests/e2e/test_bad_input.py`` (the parameter table) does not cover:
a ``resturl`` that is no URL or that answers an HTML page (refused connections: see
test_heketi_faults.py::test_heketi_down_for_a_while);
secrets with an empty or wrong key; claims with odd sizes and 253-character names.

Each bad input gets a Warning on its claim naming the cause; where the input is
invalid, Heketi sees no request at all; the process stays healthy and binds a valid
claim afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

from provisioner.k8s.quantity import gib_ceil, parse_quantity

if TYPE_CHECKING:
    from conftest import World

HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>proxy</body></html>"


class _HtmlPage(BaseHTTPRequestHandler):
    """What a login proxy or a wrong port answers: 200 and an HTML page, to anything."""

    def _page(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(HTML)))
        self.end_headers()
        self.wfile.write(HTML)

    do_GET = do_POST = do_DELETE = _page

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def html_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlPage)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_unusable_heketi_urls(world: World, html_url: str) -> None:
    world.controller().start()
    cases = {
        "not-a-url": ("heketi.example.com:8080", "resturl"),
        "words": ("this is not a url", "resturl"),
        "scheme-only": ("http://", "resturl"),
        "html": (html_url, "text/html"),
    }
    claims, classes = {}, []
    for case, (url, _) in cases.items():
        classes.append(world.storage_class(resturl=url))
        claims[case] = world.claim(classes[-1], expect_bound=False)
    for case, (url, expected) in cases.items():
        message = world.wait_warning(claims[case]["metadata"]["uid"], expected)
        if case == "html":
            assert url in message, message
        assert world.admin_key not in message

    assert world.sim.requests == []  # the real Heketi never heard of these claims
    assert world.sim.volumes() == []
    world.bound_pv(world.claim(world.storage_class())["metadata"]["name"])
    for name in classes:
        world.delete_class(name)
    world.converge()


def test_secrets_with_an_empty_or_wrong_key(world: World) -> None:
    world.controller().start()
    empty = world.claim(world.storage_class(secret=world.secret(key="")), expect_bound=False)
    wrong = world.claim(
        world.storage_class(secret=world.secret(key="not-the-key-0123456789abcdefghij")),
        expect_bound=False,
    )
    assert world.wait_warning(empty["metadata"]["uid"], "key")
    message = world.wait_warning(wrong["metadata"]["uid"], "401")
    assert "not-the-key" not in message
    assert world.sim.volumes() == []  # Heketi refused: nothing was made
    assert all(r.status == 401 for r in world.sim.requests)
    world.bound_pv(world.claim(world.storage_class())["metadata"]["name"])
    world.converge()


@pytest.mark.parametrize(
    "size",
    ["1", "999Mi", "1.5Gi", "1G"],
)
def test_odd_but_valid_sizes_round_up_to_whole_gib(world: World, size: str) -> None:
    world.controller().start()
    name = world.claim(world.storage_class(), size=size)["metadata"]["name"]
    pv = world.bound_pv(name)
    want = max(1, gib_ceil(parse_quantity(size)))
    assert pv["spec"]["capacity"]["storage"] == f"{want}Gi"
    assert [v["size"] for v in world.sim.volumes()] == [want]
    world.converge()


def test_more_than_heketi_has(world: World) -> None:
    """Valid, but no room: Heketi's own answer reaches the claim; nothing is left."""
    world.controller().start()
    sc = world.storage_class()
    claim = world.claim(sc, size="100Ti", expect_bound=False)
    message = world.wait_warning(claim["metadata"]["uid"], "No space")
    assert "102400 GiB" in message
    world.bound_pv(world.claim(sc)["metadata"]["name"])
    world.converge()
    assert len(world.sim.volumes()) == 1


@pytest.mark.parametrize("prefix", [None, "vol"], ids=["default-names", "volumenameprefix"])
def test_claim_with_a_253_character_name(world: World, prefix: str | None) -> None:
    world.controller().start()
    sc = world.storage_class(volumenameprefix=prefix)
    long_name = ("a" * 62 + ".") * 4
    long_name = long_name[:252] + "z"
    assert len(long_name) == 253
    claim = world.claim(sc, name=long_name, expect_bound=False)
    uid = claim["metadata"]["uid"]

    def outcome() -> str | None:
        fresh = world.get("persistentvolumeclaims", long_name, "default")
        if fresh and (fresh.get("status") or {}).get("phase") == "Bound":
            return "bound"
        warnings = world.warnings_for(uid)
        return f"warning: {warnings[0]}" if warnings else None

    result = world.wait_for(outcome, 60, "the long-named claim to bind or be refused")
    if result == "bound":
        world.expected[long_name] = uid
    else:  # refused: it must say why and leave nothing in Heketi
        assert "name" in result, result
        assert world.sim.volumes() == []
    world.bound_pv(world.claim(sc)["metadata"]["name"])
    world.converge()

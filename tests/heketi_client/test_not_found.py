"""Only Heketi's own "Id not found" is ``NotFound``; any other 404 is not.

The provisioner reads ``NotFound`` on a delete as "the volume is already gone" and
deletes the PV. Without this split, a wrong ``resturl`` path prefix, or a proxy whose
route no longer leads to Heketi, answers 404 for every volume, and every PV whose
claim is deleted would lose its volume's record while the volume stays in Gluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import responses

from heketi_client import HeketiAPIError, HeketiClient, NotFound, RetryPolicy, UnexpectedNotFound
from provisioner.sandbox.heketi import HeketiSimulator

ADMIN_KEY = "not-found-admin-key-0123456789abcdef"

OTHER_404S = [
    ("404 page not found\n", "text/plain; charset=utf-8"),  # Go's default mux handler
    ("Invalid path or request\n", "text/plain; charset=utf-8"),  # Heketi's router: bad path
    ("<html><body><h1>404 Not Found</h1>nginx</body></html>", "text/html"),
    ("", "text/plain"),
    ("Id not found, but this is a proxy's page\n", "text/plain"),
    ('{"error": "Id not found"}', "application/json"),
]


@pytest.mark.parametrize("body", ["Id not found\n", "Id not found"])
def test_heketis_own_answer_is_not_found(
    body: str, client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.delete(f"{wire.BASE}/volumes/{wire.VOL}", status=404, body=body)
    with pytest.raises(NotFound) as caught:
        client.delete_volume(wire.VOL)
    assert (caught.value.method, caught.value.path) == ("DELETE", f"/volumes/{wire.VOL}")


@pytest.mark.parametrize(("body", "content_type"), OTHER_404S)
def test_any_other_404_is_not_not_found(
    body: str,
    content_type: str,
    client: HeketiClient,
    heketi: responses.RequestsMock,
    wire: Any,
) -> None:
    heketi.delete(
        f"{wire.BASE}/volumes/{wire.VOL}", status=404, body=body, content_type=content_type
    )
    with pytest.raises(HeketiAPIError) as caught:
        client.delete_volume(wire.VOL)
    error = caught.value
    assert type(error) is UnexpectedNotFound and not isinstance(error, NotFound)
    assert error.status == 404
    assert "resturl" in str(error) and "not Heketi's own 'Id not found'" in str(error)
    assert len(heketi.calls) == 1  # not a transient failure either


@pytest.fixture
def sim() -> Iterator[HeketiSimulator]:
    simulator = HeketiSimulator(admin_key=ADMIN_KEY, user_key="u" * 32, seed=3)
    simulator.start()
    yield simulator
    simulator.stop()


def test_against_the_simulator_unknown_ids_and_wrong_prefixes_differ(
    sim: HeketiSimulator, make_client: Callable[..., HeketiClient], fake_time: Any
) -> None:
    """The simulator answers as Heketi does, so the same split holds end to end."""
    right = make_client(url=sim.url, key=ADMIN_KEY, retry=RetryPolicy(attempts=1))
    with pytest.raises(NotFound):
        right.get_volume("0" * 32)
    with pytest.raises(NotFound):
        right.delete_volume("0" * 32)


def test_a_wrong_path_prefix_against_the_simulator_is_not_not_found(
    make_client: Callable[..., HeketiClient], fake_time: Any
) -> None:
    """A base URL with a prefix Heketi does not serve: its router answers 404 for
    every path. (With auth on, the token's qsh would not match first: 401.)"""
    simulator = HeketiSimulator(auth=False, seed=3)
    simulator.start()
    try:
        wrong = make_client(
            url=simulator.url + "/heketi", user=None, key=None, retry=RetryPolicy(attempts=1)
        )
        with pytest.raises(UnexpectedNotFound, match="Invalid path or request"):
            wrong.delete_volume("0" * 32)
        with pytest.raises(UnexpectedNotFound):
            wrong.get_volume("0" * 32)
    finally:
        simulator.stop()

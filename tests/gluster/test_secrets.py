"""Which key is used, and how a bad Secret is reported (always before any Heketi call)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from provisioner.controller.contract import InvalidInput

if TYPE_CHECKING:
    from conftest import World

ADMIN_KEY = "admin-Key-7f3c9e1b"


def invalid(world: World, sc: dict) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        world.provisioner().provision(world.claim(sc), sc)
    assert world.heketi_requests() == 0
    assert ADMIN_KEY not in caught.value.message
    return caught.value


def test_missing_secret_is_named(world: World) -> None:
    sc = world.storage_class(secret="no-such-secret")
    error = invalid(world, sc)
    assert "Secret default/no-such-secret" in error.message
    assert "does not exist" in error.message
    assert sc["metadata"]["name"] in error.message


def test_secret_of_the_wrong_type_is_named(world: World) -> None:
    secret = world.secret(type_="Opaque")
    error = invalid(world, world.storage_class(secret=secret))
    assert f"Secret default/{secret}" in error.message
    assert "kubernetes.io/glusterfs" in error.message


def test_secret_without_a_key_entry_lists_what_it_has(world: World) -> None:
    secret = world.secret(entry="password")
    error = invalid(world, world.storage_class(secret=secret))
    assert f"Secret default/{secret}" in error.message
    assert '"key"' in error.message and '"password"' in error.message


def test_secret_wins_over_restuserkey(world: World) -> None:
    sc = world.storage_class(restuserkey="wrong-key")  # the Secret holds the right one
    world.provisioner().provision(world.claim(sc), sc)
    assert len(world.sim.volumes()) == 1


def test_restuserkey_is_used_when_there_is_no_secret(world: World) -> None:
    sc = world.storage_class(secret=None, restuserkey=ADMIN_KEY)
    pv = world.provisioner().provision(world.claim(sc), sc)
    assert len(world.sim.volumes()) == 1
    assert ADMIN_KEY not in str(pv)  # the PV names the server, never the key

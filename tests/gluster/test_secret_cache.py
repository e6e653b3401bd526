"""The Secret read per provision is cached for a short while (``secret_cache``): one
read per Secret and TTL, a rotated key is picked up on Heketi's first 401, and a
broken Secret is never cached. What a hostile tenant or Heketi can do to it is
said per test."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest

from provisioner.controller.contract import InvalidInput, ProvisionError
from tests.builders import secret_body
from tests.fakeclock import FakeClock

if TYPE_CHECKING:
    from conftest import World

ADMIN_KEY = "admin-Key-7f3c9e1b"
NEW_KEY = "admin-Key-rotated-5d1e"


def _put_key(world: World, name: str, key: str) -> None:
    world.kube.patch(
        "secrets", name, {"data": {"key": base64.b64encode(key.encode()).decode()}}, "default"
    )


def test_a_burst_of_claims_reads_the_secret_once(world: World) -> None:
    sc = world.storage_class()
    gluster = world.provisioner()
    for _ in range(5):
        gluster.provision(world.claim(sc), sc)
    assert len(world.sim.volumes()) == 5
    assert gluster.secrets.reads == 1


def test_the_secret_is_read_again_once_the_ttl_has_passed(world: World) -> None:
    clock = FakeClock(100.0)
    sc = world.storage_class()
    gluster = world.provisioner(clock=clock, secret_ttl=30.0)
    gluster.provision(world.claim(sc), sc)
    clock.advance(29.0)
    gluster.provision(world.claim(sc), sc)
    assert gluster.secrets.reads == 1
    clock.advance(1.0)
    gluster.provision(world.claim(sc), sc)
    assert gluster.secrets.reads == 2


def test_a_rotated_key_is_read_again_on_the_first_401_and_the_attempt_succeeds(
    world: World,
) -> None:
    """Heketi's keys rotated and the Secret updated within the TTL: the cached key gets
    one 401, the Secret is read again at once and the same attempt goes through."""
    secret = world.secret()
    sc = world.storage_class(secret=secret)
    gluster = world.provisioner()
    gluster.provision(world.claim(sc), sc)
    world.sim.set_keys(admin_key=NEW_KEY)
    _put_key(world, secret, NEW_KEY)

    pv = gluster.provision(world.claim(sc), sc)

    assert len(world.sim.volumes()) == 2
    assert gluster.secrets.reads == 2
    assert sum(1 for r in world.sim.requests if r.status == 401) == 1
    assert NEW_KEY not in str(pv) and ADMIN_KEY not in str(pv)


def test_a_heketi_refusing_every_key_costs_one_reread_per_attempt_and_no_loop(
    world: World,
) -> None:
    """Hostile (or misconfigured) Heketi answering 401 to everything: each attempt reads
    the Secret once more at most, fails with the usual message, and never shows a key."""
    sc = world.storage_class()
    gluster = world.provisioner()
    world.sim.set_keys(admin_key="a-key-nobody-has")
    for attempt in (1, 2):
        with pytest.raises(ProvisionError) as caught:
            gluster.provision(world.claim(sc), sc)
        assert "refused the credentials" in caught.value.message
        assert ADMIN_KEY not in caught.value.message
        # one read at first, then one re-read after each 401 (same key: no retry)
        assert gluster.secrets.reads == 1 + attempt
    assert sum(1 for r in world.sim.requests if r.status == 401) == 2


def test_a_broken_secret_is_not_cached_so_its_fix_counts_at_once(world: World) -> None:
    secret = world.secret(entry="password")
    sc = world.storage_class(secret=secret)
    gluster = world.provisioner()
    with pytest.raises(InvalidInput):
        gluster.provision(world.claim(sc), sc)
    world.kube.replace("secrets", secret_body(secret, "default", ADMIN_KEY), "default")
    gluster.provision(world.claim(sc), sc)
    assert len(world.sim.volumes()) == 1


def test_a_tenants_secret_of_the_same_name_is_never_used(world: World) -> None:
    """Hostile tenant: a Secret named like the class's, in the claim's own namespace,
    with the tenant's key. The cache is keyed by the class's (admin-named) namespace
    and name, so the tenant's Secret is never read nor served from the cache."""
    tenant_ns = "tenant-a"
    world.kube.create("namespaces", {"metadata": {"name": tenant_ns}})
    secret = world.secret()
    world.kube.create("secrets", secret_body(secret, tenant_ns, "tenant-key"), tenant_ns)
    sc = world.storage_class(secret=secret)
    gluster = world.provisioner()
    gluster.provision(world.claim(sc), sc)
    assert gluster.secrets.reads == 1
    assert len(world.sim.volumes()) == 1  # the tenant's key would have got a 401
    # entries are per namespace/name: the tenant's Secret, read on its own, does not
    # replace the class's entry
    assert gluster.secrets.read(tenant_ns, secret, named_by="test") == "tenant-key"
    assert gluster.secrets.read("default", secret, named_by="test") == ADMIN_KEY


def test_a_rotated_key_is_reread_for_a_delete_too(world: World) -> None:
    secret = world.secret()
    sc = world.storage_class(secret=secret)
    gluster = world.provisioner()
    pv = gluster.provision(world.claim(sc), sc)
    world.sim.set_keys(admin_key=NEW_KEY)
    _put_key(world, secret, NEW_KEY)
    gluster.delete(pv)
    assert world.sim.volumes() == []
    assert gluster.secrets.reads == 2

"""Block classes read their Heketi key through the same short-lived cache as file
classes (``secret_cache``): one read per Secret and TTL for a burst of claims, and a
rotated key picked up on Heketi's first 401 within the same attempt. What a hostile
party can do is said per test."""

from __future__ import annotations

import base64
import itertools
from typing import TYPE_CHECKING, Any

import pytest

from provisioner.controller.contract import ProvisionError
from provisioner.gluster.block.provisioner import BlockProvisioner
from tests.builders import claim_body
from tests.gluster.conftest import ADMIN_KEY, NAMESPACE, fast_pool

if TYPE_CHECKING:
    from conftest import World

BLOCK = "gluster.org/glusterblock"
NEW_KEY = "admin-Key-rotated-block-9c2e"
_names = itertools.count()


def _block(world: World) -> tuple[BlockProvisioner, dict[str, Any], str]:
    world.sim.set_block_hosting(size_gb=100)
    secret = world.secret(type_=BLOCK)
    sc = world.kube.create(
        "storageclasses",
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": f"block-{next(_names)}-{world.control_ns}"},
            "provisioner": BLOCK,
            "reclaimPolicy": "Delete",
            "parameters": {
                "resturl": world.sim.url, "restuser": "admin",
                "restsecretnamespace": NAMESPACE, "restsecretname": secret, "hacount": "3",
            },
        },
    )  # fmt: skip
    block = BlockProvisioner(
        kube=world.kube, provisioner_name=BLOCK, class_lookup=world.lookup_class,
        pool=fast_pool(), intent_namespace=world.control_ns,
    )  # fmt: skip
    return block, sc, secret


def _claim(world: World, sc: dict[str, Any]) -> dict[str, Any]:
    body = claim_body(
        f"blk-{next(_names)}", NAMESPACE, sc["metadata"]["name"], access_modes=("ReadWriteOnce",)
    )
    return world.kube.create("persistentvolumeclaims", body, NAMESPACE)


def test_a_burst_of_block_claims_reads_the_secret_once(world: World) -> None:
    block, sc, _ = _block(world)
    for _ in range(4):
        block.provision(_claim(world, sc), sc)
    assert len(world.sim.block_volumes()) == 4
    assert block.secrets.reads == 1


def test_a_rotated_key_is_read_again_on_the_first_401_for_block_too(world: World) -> None:
    """Keys rotated within the TTL: one refused request, the Secret read again at once,
    the same attempt goes through, and no key reaches the PV."""
    block, sc, secret = _block(world)
    block.provision(_claim(world, sc), sc)
    world.sim.set_keys(admin_key=NEW_KEY)
    world.kube.patch(
        "secrets", secret, {"data": {"key": base64.b64encode(NEW_KEY.encode()).decode()}},
        NAMESPACE,
    )  # fmt: skip

    pv = block.provision(_claim(world, sc), sc)

    assert len(world.sim.block_volumes()) == 2
    assert block.secrets.reads == 2
    assert sum(1 for r in world.sim.requests if r.status == 401) == 1
    assert NEW_KEY not in str(pv) and ADMIN_KEY not in str(pv)


def test_a_heketi_refusing_every_key_fails_once_per_attempt(world: World) -> None:
    """A hostile or misconfigured Heketi that refuses every key gets one re-read per
    attempt, no loop, and no volume."""
    block, sc, _ = _block(world)
    block.provision(_claim(world, sc), sc)  # cached
    world.sim.set_keys(admin_key="a-key-nobody-has-3b9d")
    with pytest.raises(ProvisionError) as caught:
        block.provision(_claim(world, sc), sc)
    assert "a-key-nobody-has" not in str(caught.value) and ADMIN_KEY not in str(caught.value)
    assert block.secrets.reads == 2
    assert sum(1 for r in world.sim.requests if r.status == 401) == 1
    assert len(world.sim.block_volumes()) == 1

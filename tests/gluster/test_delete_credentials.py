"""Deleting needs only a server and credentials: a stricter reading of the rest of a
class must never make its PVs undeletable (issue: migration from in-tree)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from provisioner.gluster.annotations import ANN_SECRET_NAME, ANN_SECRET_NAMESPACE

from .test_delete_repair import in_tree_pv, provisioned

if TYPE_CHECKING:
    from conftest import World

ADMIN_KEY = "admin-Key-7f3c9e1b"  # as in conftest.py


def _class_with(world: World, **params: str) -> dict[str, Any]:
    """A class the strict parser refuses (classes are immutable: it was accepted by
    an older version, or created for in-tree) but that names a usable server."""
    return world.storage_class(**params)


def test_an_in_tree_pv_of_a_class_refused_for_another_parameter_is_deleted(
    world: World,
) -> None:
    """``volumetype: mirror`` is refused for provisioning, yet the class still says
    which Heketi holds the old volume and how to sign in: the delete goes ahead."""
    _, _, claim, _ = provisioned(world)
    (volume,) = world.sim.volumes()
    refused = _class_with(world, volumetype="mirror", colour="blue")
    pv = in_tree_pv(world, refused, claim, volume)

    world.provisioner().delete(pv)

    assert world.sim.volumes() == []


def test_a_restuserkey_class_deletes_with_the_key_from_the_class(world: World) -> None:
    """The PV never carries the key; for a class that authenticates with the
    deprecated ``restuserkey`` (no Secret) in-tree re-read it from the class, and so
    do we, as long as the class still names the PV's server."""
    _, _, _, pv = provisioned(world, secret=None, restuserkey=ADMIN_KEY)
    annotations = pv["metadata"]["annotations"]
    assert ANN_SECRET_NAME not in annotations and ANN_SECRET_NAMESPACE not in annotations

    world.provisioner().delete(pv)  # a new process: nothing remembered

    assert world.sim.volumes() == []

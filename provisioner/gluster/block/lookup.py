"""Finding a block volume by name: Heketi has no lookup, so list and read each."""

from __future__ import annotations

from heketi_client import BlockVolumeInfo, HeketiClient
from heketi_client.errors import NotFound, UnreadableVolume

__all__ = ["find_block_volume"]


def find_block_volume(client: HeketiClient, name: str) -> BlockVolumeInfo | None:
    """The block volume called ``name`` (Heketi has no lookup: list, then GET each).

    An unreadable one is skipped, but if no readable one has the name, it is raised:
    it might be the one, and None would invite a second create.
    """
    unreadable: UnreadableVolume | None = None
    for block_id in client.list_block_volumes():
        try:
            found = client.get_block_volume(block_id)
        except NotFound:
            continue
        except UnreadableVolume as err:
            unreadable = unreadable or err
            continue
        if found.name == name:
            return found
    if unreadable is not None:
        raise unreadable
    return None

"""The simulator's /blockvolumes: list, info, create, delete, and Heketi's accounting of
block-hosting volumes (auto-created, ``block_hosting_volume_size``, 2% reserved,
``freesize`` going down and back up, ``blockinfo`` and the cluster's list)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from provisioner.sandbox.heketi import HeketiSimulator

from .conftest import Heketi


def create_block(heketi: Heketi, body: dict[str, Any]) -> dict[str, Any]:
    response = heketi.post("/blockvolumes", body)
    assert response.status_code == 202, response.text
    done = heketi.wait(response.headers["Location"])
    assert done.status_code == 303, done.text
    assert done.headers["Location"].startswith("/blockvolumes/")
    info = heketi.get(done.headers["Location"])
    assert info.status_code == 200
    return info.json()


def test_block_volumes_fill_an_auto_created_hosting_volume(
    make_sim: Callable[..., HeketiSimulator],
) -> None:
    heketi = Heketi(make_sim(block_hosting_volume_size=100))
    first = create_block(heketi, {"size": 10, "name": "one", "hacount": 3, "auth": True})
    second = create_block(heketi, {"size": 20})
    assert first["blockhostingvolume"] == second["blockhostingvolume"]
    assert second["name"] == f"blockvol_{second['id']}"
    assert first["blockvolume"]["username"] and first["blockvolume"]["password"]
    assert second["blockvolume"]["username"] == second["blockvolume"]["password"] == ""
    assert first["blockvolume"]["iqn"].startswith("iqn.2016-12.org.gluster-block:")
    assert len(first["blockvolume"]["hosts"]) == 3 and first["blockvolume"]["lun"] == 0

    hosting = heketi.get(f"/volumes/{first['blockhostingvolume']}").json()
    assert hosting["block"] is True and hosting["size"] == 100
    assert hosting["durability"]["replicate"] == {"replica": 3}
    assert hosting["blockinfo"] == {
        "freesize": 100 - 2 - 30,
        "reservedsize": 2,
        "blockvolume": sorted([first["id"], second["id"]]),
    }
    cluster = heketi.get(f"/clusters/{first['cluster']}").json()
    assert cluster["blockvolumes"] == sorted([first["id"], second["id"]])
    assert heketi.get("/blockvolumes").json() == {
        "blockvolumes": sorted([first["id"], second["id"]])
    }

    response = heketi.delete(f"/blockvolumes/{first['id']}")
    assert response.status_code == 202
    assert heketi.wait(response.headers["Location"]).status_code == 204
    assert heketi.get(f"/blockvolumes/{first['id']}").status_code == 404
    hosting = heketi.get(f"/volumes/{first['blockhostingvolume']}").json()
    assert hosting["blockinfo"]["freesize"] == 100 - 2 - 20  # the space came back


def test_a_full_hosting_volume_gets_a_second_one(
    make_sim: Callable[..., HeketiSimulator],
) -> None:
    heketi = Heketi(make_sim(block_hosting_volume_size=50))
    a = create_block(heketi, {"size": 40})
    b = create_block(heketi, {"size": 40})
    assert a["blockhostingvolume"] != b["blockhostingvolume"]


def test_refusals(make_sim: Callable[..., HeketiSimulator]) -> None:
    sim = make_sim(block_hosting_volume_size=100)
    heketi = Heketi(sim)
    too_big = heketi.post("/blockvolumes", {"size": 99})  # 100 GiB less 2% holds 98
    assert too_big.status_code == 500
    assert "too small to host the requested block volume of size 99" in too_big.text
    assert "minus overhead, is 98" in too_big.text
    assert heketi.post("/blockvolumes", {"size": 0}).text.startswith("validation failed: size")
    assert heketi.post("/blockvolumes", {"size": "1"}).status_code == 422
    unknown = heketi.post("/blockvolumes", {"size": 1, "clusters": ["f" * 32]})
    assert unknown.status_code == 400 and "not found" in unknown.text
    assert heketi.get(f"/blockvolumes/{'a' * 32}").status_code == 404
    assert heketi.delete(f"/blockvolumes/{'a' * 32}").status_code == 404
    hacount = heketi.post("/blockvolumes", {"size": 1, "hacount": 4})
    assert hacount.status_code == 500 and "Insufficient block hosts" in hacount.text
    assert sim.volumes() == []  # the hosting volume made for it went again

    sim.set_block_hosting(auto_create=False)
    off = heketi.post("/blockvolumes", {"size": 1})
    assert off.status_code == 500 and "Block Hosting Volume Creation is disabled" in off.text


def test_the_default_hosting_size_does_not_fit_the_default_topology(
    sim: HeketiSimulator, heketi: Heketi
) -> None:
    """As in Heketi: 1100 GiB replica 3 needs more than 3 nodes x 2 x 500 GiB hold."""
    response = heketi.post("/blockvolumes", {"size": 1})
    assert response.status_code == 500 and "No space" in response.text
    assert sim.volumes() == []

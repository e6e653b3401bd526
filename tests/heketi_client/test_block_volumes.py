"""Block volumes: the four methods, typed models, and the same hardening as volumes
(JSON type checks naming the field, 32-hex ids only, answers about another id refused,
the CHAP password never in a repr, body caps)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import responses

from heketi_client import (
    BlockVolumeCreateRequest,
    BlockVolumeInfo,
    HeketiClient,
    NotFound,
    OutcomeUnknown,
    ResponseTooLarge,
    UnreadableVolume,
)

BLOCK = "b" * 32
HOSTING = "e" * 32


def block_json(block_id: str = BLOCK, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "size": 5,
        "name": "pvc-1",
        "hacount": 3,
        "auth": True,
        "id": block_id,
        "blockvolume": {
            "hosts": ["10.0.1.1", "10.0.1.2", "10.0.1.3"],
            "iqn": "iqn.2016-12.org.gluster-block:0e3c4a3c-7fd4-4a63-bd1a-111111111111",
            "lun": 0,
            "username": "0e3c4a3c-7fd4-4a63-bd1a-111111111111",
            "password": "CHAP-PASSWORD-never-shown",
        },
        "cluster": "c" * 32,
        "blockhostingvolume": HOSTING,
    }
    body.update(overrides)
    return body


def test_create_follows_the_operation_and_reads_the_answer(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(wire.BASE + "/blockvolumes", status=202, headers={"Location": wire.QUEUE})
    heketi.get(wire.BASE + wire.QUEUE, status=303, headers={"Location": f"/blockvolumes/{BLOCK}"})
    heketi.get(f"{wire.BASE}/blockvolumes/{BLOCK}", json=block_json())
    request = BlockVolumeCreateRequest(5, name="pvc-1", hacount=3, auth=True)
    created = client.create_block_volume(request)
    assert json.loads(heketi.calls[0].request.body or b"") == {
        "size": 5, "name": "pvc-1", "hacount": 3, "auth": True,
    }  # fmt: skip
    assert created.hosts == ("10.0.1.1", "10.0.1.2", "10.0.1.3")
    assert created.lun == 0 and created.block_hosting_volume == HOSTING
    assert created.password == "CHAP-PASSWORD-never-shown"
    assert "CHAP-PASSWORD" not in repr(created)
    assert BlockVolumeInfo.from_json(block_json()).to_json() == block_json()


def test_list_get_delete(client: HeketiClient, heketi: responses.RequestsMock, wire: Any) -> None:
    heketi.get(wire.BASE + "/blockvolumes", json={"blockvolumes": [BLOCK]})
    heketi.get(f"{wire.BASE}/blockvolumes/{BLOCK}", json=block_json())
    heketi.delete(f"{wire.BASE}/blockvolumes/{BLOCK}", status=202, headers={"Location": wire.QUEUE})
    heketi.get(wire.BASE + wire.QUEUE, status=204)
    assert client.list_block_volumes() == [BLOCK]
    assert client.get_block_volume(BLOCK).name == "pvc-1"
    client.delete_block_volume(BLOCK)


def test_delete_of_an_unknown_id_is_heketis_not_found(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.delete(f"{wire.BASE}/blockvolumes/{BLOCK}", status=404, body="Id not found\n")
    with pytest.raises(NotFound):
        client.delete_block_volume(BLOCK)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"size": "5"}, "size"),
        ({"id": "not-an-id"}, "id"),
        ({"blockvolume": {"hosts": "10.0.1.1", "iqn": "x"}}, "blockvolume.hosts"),
        ({"blockvolume": {"hosts": [], "iqn": 7}}, "blockvolume.iqn"),
        ({"blockvolume": {"hosts": [], "iqn": "x", "lun": True}}, "blockvolume.lun"),
        ({"blockhostingvolume": "../volumes"}, "blockhostingvolume"),
    ],
)
def test_hostile_answers_are_refused_naming_the_field(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any,
    change: dict[str, Any], field: str,
) -> None:  # fmt: skip
    heketi.get(f"{wire.BASE}/blockvolumes/{BLOCK}", json=block_json(**change))
    with pytest.raises(UnreadableVolume, match=field.replace(".", r"\.")):
        client.get_block_volume(BLOCK)


def test_an_answer_about_another_block_volume_is_refused(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(f"{wire.BASE}/blockvolumes/{BLOCK}", json=block_json("1" * 32))
    with pytest.raises(UnreadableVolume, match="answered with block volume"):
        client.get_block_volume(BLOCK)


def test_an_unreadable_create_result_is_an_unknown_outcome(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(wire.BASE + "/blockvolumes", status=202, headers={"Location": wire.QUEUE})
    heketi.get(wire.BASE + wire.QUEUE, status=303, headers={"Location": f"/blockvolumes/{BLOCK}"})
    heketi.get(f"{wire.BASE}/blockvolumes/{BLOCK}", json={"id": BLOCK})
    with pytest.raises(OutcomeUnknown):
        client.create_block_volume(BlockVolumeCreateRequest(1))


@pytest.mark.parametrize("bad", ["../volumes", "", "B" * 32, "blockvol_abc"])
def test_ids_must_be_hex(client: HeketiClient, heketi: responses.RequestsMock, bad: str) -> None:
    with pytest.raises(ValueError, match="hexadecimal"):
        client.get_block_volume(bad)
    with pytest.raises(ValueError, match="hexadecimal"):
        client.delete_block_volume(bad)
    assert not heketi.calls


@pytest.mark.parametrize(
    "kwargs",
    [{"size": 0}, {"size": 1, "name": "a b"}, {"size": 1, "hacount": 0},
     {"size": 1, "clusters": ["nope"]}, {"size": True}],
)  # fmt: skip
def test_requests_check_heketis_rules_first(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        BlockVolumeCreateRequest(**kwargs)


def test_the_body_cap_applies(
    make_client: Callable[..., HeketiClient], heketi: responses.RequestsMock, wire: Any
) -> None:
    client = make_client(max_body_bytes=1024)
    heketi.get(wire.BASE + "/blockvolumes", json={"blockvolumes": [BLOCK] * 100})
    with pytest.raises(ResponseTooLarge):
        client.list_block_volumes()

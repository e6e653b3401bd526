"""The one check of Heketi's volume answers (``answers``) and who owns a volume id
(``volume_owners``): pure, no Heketi, no API server."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from provisioner.controller.contract import Outcome
from provisioner.gluster.annotations import ANN_GID, ANN_HEKETI_VOLUME_ID
from provisioner.gluster.answers import Answer, AnswerRefused, Asked, accept, mismatch
from provisioner.gluster.volume_owners import VolumeOwners

UID = "11111111-1111-4111-8111-111111111111"
OTHER_UID = "22222222-2222-4222-8222-222222222222"
OWN = "a" * 32
THEIRS = "b" * 32
SOURCE = "c" * 32
NAME = f"pvc-{UID}"


def pv(name: str, volume_id: str, path: str | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "annotations": {ANN_HEKETI_VOLUME_ID: volume_id, ANN_GID: "2000"},
        },
        "spec": {"glusterfs": {"path": path or f"vol_{volume_id}"}},
    }


def answer(**fields: Any) -> Answer:
    base: dict[str, Any] = {"id": OWN, "name": NAME, "size": 5, "gid": 2001}
    return Answer(**{**base, **fields})


ASKED = Asked(UID, NAME, gid=2001, min_size=5)


def test_a_matching_answer_is_accepted_and_taken() -> None:
    owners = VolumeOwners()
    accept(answer(), ASKED, owners)
    assert owners.others(OWN, OTHER_UID) == [f"claim {UID}"]
    assert owners.others(OWN, UID) == []
    accept(answer(), ASKED, owners)  # the same claim again: still its own


@pytest.mark.parametrize(
    ("fields", "asked", "field", "says"),
    [
        ({"name": "pvc-other"}, ASKED, "name", "is not the requested"),
        ({"name": "pvc x/../y"}, Asked(UID, "pvc x/../y"), "name", "is not a Heketi volume name"),
        ({"gid": 0}, ASKED, "gid", "is missing (0), not the recorded 2001"),
        ({"gid": 2000}, ASKED, "gid", "is not the recorded 2001"),
        ({"size": 4}, ASKED, "size", "is 4 GiB, less than the 5 GiB asked"),
        (
            {"id": SOURCE},
            Asked(UID, NAME, gid=2001, source_id=SOURCE),
            "id",
            "is the source volume's",
        ),
    ],
)
def test_each_field_that_differs_is_named(
    fields: dict[str, Any], asked: Asked, field: str, says: str
) -> None:
    owners = VolumeOwners()
    with pytest.raises(AnswerRefused) as caught:
        accept(answer(**fields), asked, owners)
    assert caught.value.field == field
    assert f"its {field} {says}" in caught.value.message
    assert caught.value.outcome is Outcome.WAIT_FOR_CHANGE
    assert owners.others(answer(**fields).id, OTHER_UID) == []  # nothing taken
    # What Heketi answered for a name or GID is never told to the claim's tenant.
    assert "pvc-other" not in caught.value.message and "2000" not in caught.value.message


def test_a_volume_another_pv_names_is_refused_but_the_claims_own_pv_is_fine() -> None:
    owners = VolumeOwners()
    owners.add_pv(pv("pvc-victim", OWN))
    with pytest.raises(AnswerRefused) as caught:
        accept(answer(), ASKED, owners)
    assert caught.value.field == "id"
    assert "pvc-victim" not in caught.value.message
    found = mismatch(answer(), ASKED, owners)
    assert found is not None and "PV pvc-victim" in found.detail

    owners.remove_pv(pv("pvc-victim", OWN))
    owners.add_pv(pv(f"pvc-{UID}", OWN))  # the claim's own PV (a retry after its write)
    accept(answer(), ASKED, owners)


def test_two_claims_answered_with_one_id_cannot_both_take_it() -> None:
    owners = VolumeOwners()
    results: list[str] = []
    barrier = threading.Barrier(8)

    def take(uid: str) -> None:
        barrier.wait()
        try:
            accept(answer(name=f"pvc-{uid}"), Asked(uid, f"pvc-{uid}", gid=2001), owners)
            results.append("taken")
        except AnswerRefused:
            results.append("refused")

    uids = [f"{n:08d}-1111-4111-8111-111111111111" for n in range(8)]
    threads = [threading.Thread(target=take, args=(u,)) for u in uids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["refused"] * 7 + ["taken"]


def test_owners_follow_pv_changes_and_the_claims_pv_replaces_its_hold() -> None:
    owners = VolumeOwners()
    owners.add_pv(pv("pvc-a", OWN))
    owners.add_pv(pv("pvc-a", THEIRS))  # the PV now names another volume
    assert owners.others(OWN, UID) == []
    assert owners.others(THEIRS, UID) == ["PV pvc-a"]
    owners.add_pv(pv("pvc-b", THEIRS))  # two PVs naming one volume: both known
    assert sorted(owners.others(THEIRS, UID)) == ["PV pvc-a", "PV pvc-b"]
    owners.remove_pv(pv("pvc-a", THEIRS))
    assert owners.others(THEIRS, UID) == ["PV pvc-b"]

    assert owners.take(OWN, UID) == []
    owners.add_pv(pv(f"pvc-{UID}", OWN))  # its PV written: the claim's hold goes
    assert owners.others(OWN, UID) == []
    assert owners.others(OWN, OTHER_UID) == [f"PV pvc-{UID}"]
    owners.release(OWN)
    assert owners.others(OWN, OTHER_UID) == [f"PV pvc-{UID}"]  # a PV is never released


def test_in_tree_pvs_are_read_by_their_path() -> None:
    owners = VolumeOwners()
    owners.add_pv({"metadata": {"name": "pvc-old"}, "spec": {"glusterfs": {"path": f"vol_{OWN}"}}})
    assert owners.others(OWN, UID) == ["PV pvc-old"]
    owners.add_pv({"metadata": {"name": "broken"}, "spec": "not a mapping"})  # no crash
    assert len(owners) == 1

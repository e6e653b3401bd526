"""Heketi's answer about a volume, checked against what was asked before anything is
written from it.

A PV is a promise about whose data a tenant mounts and which volume its delete
removes. Everything in it that names the volume (id, path, GID, capacity) comes from
Heketi's answer, and Heketi can be wrong: compromised, buggy, or confused after its
database was restored from a backup. A create of claim B that ends with a 303 to
claim A's volume would otherwise give B a PV with A's id, path and GID: B's pods
would mount A's data, and deleting B would delete A's volume while B's own leaked.

So every answer that is about to become (part of) a PV goes through ``accept``: the
create's, the clone's (before it is grown too), the one a lookup by name found, and
a block volume's (whose iSCSI fields ``block.answers`` checks besides). The orphan
sweep asks ``mismatch`` before it deletes a volume a lookup found. The rules:

* name: Heketi's name rule (``^[a-zA-Z0-9_-]+$``) and equal to the name asked for
  (derived from the claim uid);
* id: not the clone source's, no PV names it but the claim's own, and no other claim
  in this process took it (``VolumeOwners``; checking and taking are one step);
* gid (file volumes): the recorded GID (a clone's is its source's), never 0;
* size: at least what was asked for (a clone's only once it is grown).

A mismatch is ``AnswerRefused``: no PV, an event on the claim naming the field, the
intent record kept (its GID stays reserved) and nothing deleted: an answer we do not
trust is no ground to delete anything either. Whatever Heketi made stays for an
operator; ``heketi-provisioner audit`` lists a volume named for a claim without PV as
an orphan. The claim waits for a change (or a resync) and then looks the volume up
by its name again, which is checked the same way.

The event says which field and what was expected; it never says whose volume the id
belongs to (the tenant reading it has no business knowing), the log line does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import structlog

from heketi_client import BlockVolumeInfo, VolumeInfo
from provisioner.controller.contract import Outcome, ProvisionError
from provisioner.gluster.volume_owners import VolumeOwners

__all__ = ["Answer", "AnswerRefused", "Asked", "Mismatch", "accept", "mismatch"]

log = structlog.get_logger(__name__)

HEKETI_NAME = re.compile(r"[a-zA-Z0-9_-]+")
"""Heketi's own rule for volume names (POST /volumes validation)."""

_SHOWN = 80


@dataclass(frozen=True)
class Answer:
    """The fields of a Heketi volume answer that the checks read."""

    id: str
    name: str
    size: int
    gid: int | None  # None: a kind without GIDs (block volumes)

    @classmethod
    def of(cls, volume: VolumeInfo | BlockVolumeInfo) -> Answer:
        gid = volume.gid if isinstance(volume, VolumeInfo) else None
        return cls(id=volume.id, name=volume.name, size=volume.size, gid=gid)


@dataclass(frozen=True)
class Asked:
    """What was asked of Heketi for one claim."""

    claim_uid: str
    name: str
    gid: int | None = None  # file volumes: the GID the intent record holds
    min_size: int | None = None  # GiB; None: not checked (a clone before its grow)
    source_id: str | None = None  # a clone's source volume
    what: str = "create"  # for the message: create, clone, lookup, grow


@dataclass(frozen=True)
class Mismatch:
    field: str
    reason: str  # for the claim's event: no other claim's or PV's name in it
    detail: str = ""  # for the operator's log only


class AnswerRefused(ProvisionError):
    """Heketi's answer does not match what was asked; nothing was written from it."""

    def __init__(self, asked: Asked, found: Mismatch) -> None:
        self.field = found.field
        super().__init__(
            f"Heketi's answer to the {asked.what} of volume {asked.name} is refused: its "
            f"{found.field} {found.reason}. No PV is written from it and nothing is "
            "deleted; whatever Heketi made is left for an operator (heketi-provisioner "
            "audit lists it). Not retried until the claim changes",
            outcome=Outcome.WAIT_FOR_CHANGE,
        )


def _shown(text: str) -> str:
    return repr(text[:_SHOWN] + ("..." if len(text) > _SHOWN else ""))


def mismatch(answer: Answer, asked: Asked, owners: VolumeOwners) -> Mismatch | None:
    """The first field of ``answer`` that does not match ``asked`` (None: all match).
    Reads ``owners`` but does not take the volume."""
    found = _fields(answer, asked)
    if found is not None:
        return found
    others = owners.others(answer.id, asked.claim_uid)
    return _owned(answer, others) if others else None


def _fields(answer: Answer, asked: Asked) -> Mismatch | None:
    """The event's text never quotes what Heketi answered for a name, id or GID: that
    may be another claim's volume, which is none of this claim's tenant's business
    (the log line's ``detail`` has it)."""
    answered = f"Heketi answered {_shown(answer.name)} ({answer.id})"
    if not HEKETI_NAME.fullmatch(answer.name):
        return Mismatch("name", "is not a Heketi volume name", answered)
    if answer.name != asked.name:
        return Mismatch("name", f"is not the requested {asked.name!r}", answered)
    if asked.source_id is not None and answer.id == asked.source_id:
        return Mismatch("id", "is the source volume's, not a new clone's", answered)
    if asked.gid is not None:
        if not answer.gid:
            return Mismatch("gid", f"is missing (0), not the recorded {asked.gid}", answered)
        if answer.gid != asked.gid:
            detail = f"{answered} with GID {answer.gid}"
            return Mismatch("gid", f"is not the recorded {asked.gid}", detail)
    if asked.min_size is not None and answer.size < asked.min_size:
        return Mismatch("size", f"is {answer.size} GiB, less than the {asked.min_size} GiB asked")
    return None


def _owned(answer: Answer, others: list[str]) -> Mismatch:
    return Mismatch(
        "id",
        "is already another volume's (a PV or another claim names it)",
        detail=f"{answer.id} is named by " + ", ".join(others),
    )


def accept(answer: Answer, asked: Asked, owners: VolumeOwners) -> None:
    """Check ``answer`` and take its id for the claim; ``AnswerRefused`` if it does not
    match. Taking is atomic with the ownership check (``VolumeOwners.take``)."""
    found = _fields(answer, asked)
    if found is None:
        others = owners.take(answer.id, asked.claim_uid)
        found = _owned(answer, others) if others else None
    if found is None:
        return
    log.warning(
        "heketi_answer.refused",
        field=found.field,
        asked=asked.name,
        answered=answer.name[:_SHOWN],
        volume_id=answer.id,
        what=asked.what,
        claim_uid=asked.claim_uid,
        detail=found.detail or None,
    )
    raise AnswerRefused(asked, found)

"""What this process knows about provisioning each claim, and which claims are busy.

An ``Attempt`` lives from a claim's first provision attempt until its volume is gone
or its record is dropped: the GID it holds, the volume once Heketi answered, and
whether a create may have happened unseen (``uncertain``: then only Heketi can say,
and the next attempt looks before it creates).

Provision and the orphan sweep must never work on one claim at once: a sweep that
deleted the volume of a provision still running would leave a PV pointing at
nothing. ``begin_provision``/``begin_reclaim`` exclude each other per claim uid.
The controller hands a claim to one worker at a time, so one ``Attempt`` is never
changed by two threads at once; the registry itself is locked.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from heketi_client import VolumeInfo

__all__ = ["Attempt", "Attempts"]


@dataclass
class Attempt:
    """What this process knows about provisioning one claim."""

    class_name: str
    server: str
    gid: int | None = None
    volume: VolumeInfo | None = None
    uncertain: bool = False  # a create may have happened that we did not see
    recorded: bool = False  # the intent record holds ``gid``
    shares_gid: bool = False  # a clone: this attempt counted one more holder of ``gid``


class Attempts:
    """Thread-safe registry of attempts, and of claims with work running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_claim: dict[str, Attempt] = {}
        self._provisioning: set[str] = set()  # claim uids with a provision() running
        self._reclaiming: set[str] = set()  # claim uids the orphan sweep is cleaning up

    # -- who works on a claim ----------------------------------------------------

    def begin_provision(self, claim_uid: str) -> bool:
        """Mark a provision running; False while the sweep reclaims the claim."""
        with self._lock:
            if claim_uid in self._reclaiming:
                return False
            self._provisioning.add(claim_uid)
            return True

    def end_provision(self, claim_uid: str) -> None:
        with self._lock:
            self._provisioning.discard(claim_uid)

    def in_flight(self) -> set[str]:
        """Claim uids whose provision is running in this process right now."""
        with self._lock:
            return set(self._provisioning)

    def begin_reclaim(self, claim_uid: str) -> bool:
        """Reserve a claim uid for the sweep; False while a provision for it runs.
        Until ``end_reclaim``, ``begin_provision`` for it answers False."""
        with self._lock:
            if claim_uid in self._provisioning or claim_uid in self._reclaiming:
                return False
            self._reclaiming.add(claim_uid)
            return True

    def end_reclaim(self, claim_uid: str) -> None:
        with self._lock:
            self._reclaiming.discard(claim_uid)

    # -- the records ---------------------------------------------------------------

    def for_claim(self, claim_uid: str, class_name: str, server: str) -> Attempt:
        """The claim's attempt; a fresh one if there is none or it was for another server."""
        with self._lock:
            attempt = self._by_claim.get(claim_uid)
            if attempt is None or attempt.server != server:
                attempt = self._by_claim[claim_uid] = Attempt(class_name, server)
            return attempt

    def known_outcome(self, claim_uid: str) -> tuple[bool, VolumeInfo | None]:
        """(True, volume or None) when this process saw every attempt for the claim
        since its record was written; (False, None) when only Heketi can tell."""
        with self._lock:
            attempt = self._by_claim.get(claim_uid)
        if attempt is None or not attempt.recorded:
            return False, None
        if attempt.volume is not None:
            return True, attempt.volume
        return (not attempt.uncertain), None

    def forget(self, claim_uid: str) -> None:
        """Drop what this process knows of a claim (its record is being removed)."""
        with self._lock:
            self._by_claim.pop(claim_uid, None)

    def volume_gone(self, claim_uid: str, volume_id: str) -> None:
        """Heketi confirmed the volume gone: the claim's attempt (if it was about that
        volume, or had none yet) is over."""
        with self._lock:
            attempt = self._by_claim.get(claim_uid)
            if attempt is not None and (attempt.volume is None or attempt.volume.id == volume_id):
                del self._by_claim[claim_uid]

"""One provisioning attempt for one claim, and what the controller remembers about it.

The memory (``ClaimMemory``) is what keeps events from spamming: a resync
re-examines every claim every few minutes, and a claim that cannot be served
must not collect a new Warning each time.  A message is reported once per claim
*fingerprint* (its spec plus its class's resourceVersion); changing either starts
afresh, which is also when an invalid claim is tried again.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from provisioner.events import (
    NORMAL,
    PROVISIONING,
    PROVISIONING_CLEANUP_FAILED,
    PROVISIONING_FAILED,
    PROVISIONING_SUCCEEDED,
    WARNING,
)
from provisioner.kubeapi import KubeAlreadyExists, KubeAPIError
from provisioner.objects import pv_name
from provisioner.predicates import ClaimVerdict, claim_class_name, should_provision
from provisioner.protocol import InvalidInput, ProvisionError

if TYPE_CHECKING:
    from provisioner.controller import Controller

log = structlog.get_logger(__name__)

Obj = dict[str, Any]


@dataclass
class ClaimMemory:
    fingerprint: str = ""
    invalid: bool = False
    reported: set[tuple[str, str]] = field(default_factory=set)


def fingerprint(claim: Obj, storage_class: Obj | None) -> str:
    spec = json.dumps(claim.get("spec") or {}, sort_keys=True)
    class_version = ((storage_class or {}).get("metadata") or {}).get("resourceVersion")
    return f"{class_version}|{spec}"


def retryable(exc: KubeAPIError) -> bool:
    """Worth trying again: no answer, throttled, server trouble, or a conflict."""
    return exc.status in (0, 409, 429) or exc.status >= 500


class ClaimMemories:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_uid: dict[str, ClaimMemory] = {}
        self.gate_warned: set[str] = set()
        self.provisioned: set[str] = set()  # PV created, maybe not yet in the cache

    def for_claim(self, uid: str, print_: str) -> ClaimMemory:
        with self._lock:
            memory = self._by_uid.get(uid)
            if memory is None or memory.fingerprint != print_:
                memory = ClaimMemory(fingerprint=print_)
                self._by_uid[uid] = memory
            return memory

    def forget(self, uid: str) -> None:
        with self._lock:
            self._by_uid.pop(uid, None)
            self.gate_warned.discard(uid)
            self.provisioned.discard(uid)

    def allow_retry_of_invalid(self) -> None:
        """On resync: an invalid claim may have been fixed outside it (a Secret)."""
        with self._lock:
            for memory in self._by_uid.values():
                memory.invalid = False


def sync_claim(ctl: Controller, key: str) -> None:
    """Provision the claim behind ``key`` if it is ours and has no volume yet."""
    claim = ctl.claims.get(key)
    if claim is None:
        return
    class_name = claim_class_name(claim)
    storage_class = ctl.classes.get(class_name) if class_name else None
    if should_provision(claim, storage_class, ctl.settings.provisioner_name) is not (
        ClaimVerdict.PROVISION
    ):
        return  # not ours, or WaitForFirstConsumer before a node is chosen: silent
    assert storage_class is not None
    meta = claim["metadata"]
    uid = str(meta["uid"])
    volume = pv_name(uid)
    if uid in ctl.memories.provisioned or ctl.pvs.get(volume) is not None:
        return
    if ctl.gate_message is not None:
        if uid not in ctl.memories.gate_warned:
            ctl.memories.gate_warned.add(uid)
            ctl.events.record(claim, WARNING, PROVISIONING_FAILED, ctl.gate_message)
        return
    memory = ctl.memories.for_claim(uid, fingerprint(claim, storage_class))
    if memory.invalid:
        return

    def report(event_type: str, reason: str, message: str) -> None:
        if (reason, message) not in memory.reported:
            memory.reported.add((reason, message))
            ctl.events.record(claim, event_type, reason, message)

    logger = log.bind(
        namespace=meta.get("namespace"),
        claim=meta.get("name"),
        **{"class": class_name, "volume": volume},
    )
    labels = {"class": class_name or "", "source": ""}
    report(
        NORMAL,
        PROVISIONING,
        f'External provisioner is provisioning volume for claim "{meta.get("namespace")}/'
        f'{meta.get("name")}"',
    )
    ctl.bind_timer.expect(uid, volume, class_name or "")
    started = time.monotonic()
    try:
        try:
            pv = ctl.provisioner.provision(claim, storage_class)
            _create_pv(ctl, claim, pv, report)
        except ProvisionError:
            raise
        except Exception as unexpected:
            # The text of an unknown exception is not shown to users: it could
            # carry anything. The log keeps the traceback for the operator.
            logger.exception("provision.unexpected_error")
            raise ProvisionError(f"internal error ({type(unexpected).__name__})") from unexpected
    except ProvisionError as exc:
        elapsed = time.monotonic() - started
        ctl.metrics.provision_failed_total.labels(**labels).inc()
        ctl.metrics.provision_duration.labels(**labels).observe(elapsed)
        report(WARNING, PROVISIONING_FAILED, exc.message)
        if isinstance(exc, InvalidInput) or not exc.retry:
            memory.invalid = True
            ctl.bind_timer.forget(uid)
            ctl.queue.forget(("claim", key))
            logger.warning("provision.rejected", duration=round(elapsed, 3), error=exc.message)
        else:
            delay = ctl.queue.add_rate_limited(("claim", key))
            ctl.metrics.retries_total.inc()
            logger.warning(
                "provision.failed", duration=round(elapsed, 3), error=exc.message, retry_in=delay
            )
        return
    elapsed = time.monotonic() - started
    ctl.memories.provisioned.add(uid)
    ctl.queue.forget(("claim", key))
    ctl.metrics.provision_total.labels(**labels).inc()
    ctl.metrics.provision_duration.labels(**labels).observe(elapsed)
    report(NORMAL, PROVISIONING_SUCCEEDED, f"Successfully provisioned volume {volume}")
    logger.info("provision.succeeded", duration=round(elapsed, 3))


def _create_pv(ctl: Controller, claim: Obj, pv: Obj, report: Any) -> None:
    """Create the PV; AlreadyExists means an earlier attempt got there first.

    A permanent refusal leaves a backend volume no PV points at; delete it here,
    since nothing else would ever find it.  If the claim was deleted meanwhile
    the PV is still created: the binder marks it Released and the delete path
    cleans it up.
    """
    try:
        ctl.kube.create("persistentvolumes", pv)
    except KubeAlreadyExists:
        return
    except KubeAPIError as exc:
        if retryable(exc):
            raise ProvisionError(f"creating PersistentVolume failed: {exc.message}") from exc
        try:
            ctl.provisioner.delete(pv)
        except Exception as cleanup:
            report(
                WARNING,
                PROVISIONING_CLEANUP_FAILED,
                f"Failed to clean up the volume after the PersistentVolume was refused: "
                f"{getattr(cleanup, 'message', type(cleanup).__name__)}",
            )
        raise ProvisionError(
            f"the API server refused the PersistentVolume: {exc.message}", retry=False
        ) from exc

"""What a hostile (compromised, buggy, or restored-from-backup) Heketi can make the
controller believe, done the way such a Heketi would: with well-formed answers whose
content lies (the simulator's ``misdirect_result_next`` and ``tamper_next``).

What it must never achieve: a PV naming another claim's volume (whose data the tenant
would mount, and which deleting the claim would delete), a PV with GID 0, a volume
grown more than asked, or a worker held past the request deadline. What is allowed:
no PV, an event naming the field, the intent record kept, nothing deleted on the
strength of the answer, and whatever Heketi made listed by ``audit``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from heketi_client import HeketiClient, HeketiTimeout, RetryPolicy
from provisioner.audit.compare import run_audit
from provisioner.gluster.annotations import ANN_GID, ANN_HEKETI_VOLUME_ID
from provisioner.gluster.block.objects import ANN_BLOCK_VOLUME_ID
from provisioner.gluster.pool import HeketiTarget
from tests.builders import class_body

from .conftest import (
    ADMIN_KEY,
    ADMIN_SECRET,
    CONTROLLER_NAMESPACE,
    PROVISIONER,
    TENANT,
    VICTIM,
    Obj,
    World,
)


def _uid(world: World, namespace: str, claim: str) -> str:
    return str((world.get("persistentvolumeclaims", claim, namespace) or {})["metadata"]["uid"])


def _uid_of(claim: Obj) -> str:
    return str(claim["metadata"]["uid"])


def _audit(world: World) -> Any:
    target = HeketiTarget(world.sim.url, "admin", ADMIN_KEY)
    return run_audit(world.admin, provisioner_name=PROVISIONER, extra_targets=(target,))


def test_a_create_answered_with_another_claims_volume_gets_no_pv(world: World) -> None:
    """Hole 1: Heketi ends claim B's create with a 303 to claim A's volume. Before the
    fix B's PV named A's volume id, path and GID: B's pods mounted A's data, and
    deleting B deleted A's volume while B's own leaked."""
    sc = world.storage_class("gluster")
    world.start_controller()
    world.victim.claim("data", sc)
    victim_pv = world.bound_pv(VICTIM, "data")
    victim_id = victim_pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID]
    world.sim.faults.misdirect_result_next("volume_create", f"/volumes/{victim_id}")

    world.tenant.claim("mine", sc)

    message, pv = world.warning_or_pv(TENANT, "mine")
    assert not pv, f"a PV was written from the misdirected answer: {pv.get('metadata')}"
    assert "its name is not the requested" in message and "refused" in message, message
    assert victim_pv["metadata"]["name"] not in message  # nothing learnt about the victim
    uid = _uid(world, TENANT, "mine")
    # The record (and its GID) stays; the claim's own volume is left for the operator.
    assert world.get("configmaps", f"heketi-intent-{uid}", CONTROLLER_NAMESPACE)
    assert world.heketi_volume(name=f"pvc-{uid}") is not None
    report = _audit(world)
    assert [o.volume_name for o in report.orphans] == [f"pvc-{uid}"], report.to_json()
    assert not report.missing_volumes and not report.gid_collisions, report.to_json()

    # The tenant gives up on the claim: whatever goes, the victim's volume stays.
    world.tenant.delete("persistentvolumeclaims", "mine")
    verdict = world.after_sweeps(
        lambda: None if world.heketi_volume(volume_id=victim_id) else "victim volume deleted"
    )
    assert world.heketi_volume(volume_id=victim_id) is not None, verdict
    assert world.bound_pv(VICTIM, "data")["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID] == (
        victim_id
    )


def test_a_lookup_answered_with_a_bound_volume_is_not_taken(world: World) -> None:
    """Hole 1, a volume found again by name: Heketi says the claim's volume name is in
    use, and its answer about another claim's volume gives that name. The claim must
    not get that volume, and deleting the claim must not delete it (the sweep looks
    the name up too)."""
    sc = world.storage_class("gluster")
    world.start_controller()
    world.victim.claim("data", sc)
    victim_id = world.bound_pv(VICTIM, "data")["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID]
    world.restart_controller()  # a process that has not seen the victim's volume yet
    world.sim.faults.fail_next("volume_create", count=1000, status=500, text="Injected")
    uid = _uid_of(world.tenant.claim("mine", sc))

    def renamed(volume: Obj) -> Obj | None:
        """The victim's volume, answered under the tenant's claim's volume name and GID
        (the victim has the class's first GID, 2000; the tenant's claim the next): a
        perfect forgery but for the id, which the victim's PV names."""
        if volume.get("id") != victim_id:
            return None
        return {**volume, "name": f"pvc-{uid}", "gid": 2001}

    world.sim.faults.clear()
    world.sim.faults.tamper_next("GET /volumes/{id}", renamed, count=1000)
    in_use = f"Failed to allocate new volume: Volume name 'pvc-{uid}' already in use"
    world.sim.faults.fail_next("volume_create", count=1000, status=500, text=in_use)

    message, pv = world.warning_or_pv(TENANT, "mine")
    assert not pv, f"a PV was written from the lying lookup: {pv.get('metadata')}"
    assert "its id" in message and "already another volume's" in message, message
    world.tenant.delete("persistentvolumeclaims", "mine")
    verdict = world.after_sweeps(
        lambda: None if world.heketi_volume(volume_id=victim_id) else "victim volume deleted"
    )
    assert world.heketi_volume(volume_id=victim_id) is not None, verdict
    world.sim.faults.clear()


def test_a_block_create_answered_with_another_claims_block_volume_gets_no_pv(
    world: World,
) -> None:
    """Hole 1, block volumes: the same 303 to another claim's block volume. Its PV
    would carry the other claim's target, IQN and LUN (and CHAP credentials)."""
    world.sim.set_block_hosting(size_gb=100)
    body = class_body(
        "block", world.sim.url, provisioner="gluster.org/glusterblock",
        restsecretnamespace=CONTROLLER_NAMESPACE, restsecretname=ADMIN_SECRET,
    )  # fmt: skip
    world.admin.create("storageclasses", body)
    world.start_controller()
    world.victim.claim("db", "block")
    victim_pv = world.bound_pv(VICTIM, "db")
    victim_id = victim_pv["metadata"]["annotations"][ANN_BLOCK_VOLUME_ID]
    world.sim.faults.misdirect_result_next("blockvolume_create", f"/blockvolumes/{victim_id}")

    world.tenant.claim("db", "block")

    message, pv = world.warning_or_pv(TENANT, "db")
    assert not pv, f"a PV was written from the misdirected answer: {pv.get('metadata')}"
    assert "its name is not the requested" in message, message
    uid = _uid(world, TENANT, "db")
    assert world.get("configmaps", f"heketi-intent-{uid}", CONTROLLER_NAMESPACE)
    assert f"pvc-{uid}" in [
        v["name"] for v in world.sim.block_volumes()
    ]  # the claim's own, left for the operator
    world.tenant.delete("persistentvolumeclaims", "db")
    verdict = world.after_sweeps(
        lambda: (
            None
            if any(v.get("id") == victim_id for v in world.sim.block_volumes())
            else "victim block volume deleted"
        )
    )
    assert any(v.get("id") == victim_id for v in world.sim.block_volumes()), verdict


def test_a_clone_answered_without_a_gid_gets_no_pv_with_gid_0(world: World) -> None:
    """Hole 1, the clone: Heketi's answer about the clone has no ``gid``. Before the
    fix the PV said ``pv.beta.kubernetes.io/gid: "0"``, so its pods got group 0."""
    sc = world.storage_class("gluster")
    world.start_controller()
    world.tenant.claim("source", sc)
    source = world.bound_pv(TENANT, "source")
    source_id = source["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID]

    def without_gid(volume: Obj) -> Obj | None:
        if volume.get("id") == source_id:
            return None
        return {k: v for k, v in volume.items() if k != "gid"}

    world.sim.faults.tamper_next("GET /volumes/{id}", without_gid, count=100)
    ref = {"kind": "PersistentVolumeClaim", "name": "source"}
    world.tenant.claim("copy", sc, dataSource=ref)

    message, pv = world.warning_or_pv(TENANT, "copy")
    gids = [p["metadata"]["annotations"].get(ANN_GID) for p in world.admin.list(
        "persistentvolumes")["items"]]  # fmt: skip
    assert "0" not in gids, gids
    assert not pv, f"a PV was written from a clone answer without GID: {pv.get('metadata')}"
    assert "its gid is missing" in message, message
    world.sim.faults.clear()


@pytest.mark.parametrize("lost", [1, 3])
def test_a_clone_grown_after_lost_answers_ends_at_the_request(world: World, lost: int) -> None:
    """Hole 2: the expand after a clone completes in Heketi but its result is lost;
    the retry used the remembered (pre-grow) answer and sent the whole increment
    again: 10Gi asked became 19Gi after one loss, 37Gi after three."""
    sc = world.storage_class("gluster")
    world.start_controller()
    world.tenant.claim("source", sc)
    world.bound_pv(TENANT, "source")
    world.sim.faults.lose_result_next("volume_expand", count=lost)
    ref = {"kind": "PersistentVolumeClaim", "name": "source"}

    world.tenant.claim("copy", sc, size="10Gi", dataSource=ref)

    pv = world.bound_pv(TENANT, "copy", timeout=60)
    volume = world.heketi_volume(volume_id=pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID])
    assert volume is not None and volume["size"] == 10, volume
    assert pv["spec"]["capacity"]["storage"] == "10Gi"
    # One expand, its answer lost; the retry read the size (10) and sent no other.
    expands = world.sim.request_counts()
    assert sum(n for k, n in expands.items() if k.startswith("POST /volumes/{id}/expand")) == 1
    world.sim.faults.clear()


# -- a trickling Heketi -----------------------------------------------------------------


class Trickler:
    """A server that answers every request with headers and then one body byte per
    ``interval`` seconds: no single read ever waits long enough to time out."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
                conn.sendall(b"Content-Length: 100000\r\n\r\n")
                while not self._stop.wait(self.interval):
                    conn.sendall(b" ")
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._sock.close()


@pytest.fixture
def trickler() -> Iterator[Trickler]:
    server = Trickler()
    yield server
    server.close()


def test_a_trickling_heketi_ends_in_a_timeout_within_the_deadline(trickler: Trickler) -> None:
    """Hole 5: the deadline bounded each attempt only, and an idempotent GET is tried 5
    times: a GET against a server sending a byte every half second took 305 s with
    the defaults. Now the deadline is for the whole call, retries included."""
    deadline = 1.0
    client = HeketiClient(
        trickler.url,
        user="admin",
        key=ADMIN_KEY,
        timeout=(2.0, 2.0),
        request_deadline=deadline,
        retry=RetryPolicy(attempts=5, backoff=0.05, max_backoff=0.1),
    )
    started = time.monotonic()
    with client, pytest.raises(HeketiTimeout, match="request deadline"):
        client.get_volume("0" * 32)
    elapsed = time.monotonic() - started
    assert trickler.connections == 1, f"{trickler.connections} attempts after the deadline"
    assert elapsed < deadline + 0.5, f"{elapsed:.1f} s for a {deadline} s deadline"

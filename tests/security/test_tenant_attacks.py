"""A tenant against the controller: forged intent records and pre-created Services.

Each test writes only in ``tenant-a`` (``TenantClient`` refuses anything else), the
way a user with ``edit`` on that one namespace would, and checks what must not
happen: a Heketi volume deleted that is not the tenant's, the admin key's tokens or
a Secret going where the tenant points, a GID chosen by the tenant.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest

from provisioner.gluster.annotations import ANN_GID, ANN_HEKETI_VOLUME_ID, ANN_INTENT_GID
from provisioner.sandbox.waiting import wait_for

from .conftest import (
    ADMIN_SECRET,
    CONTROLLER_NAMESPACE,
    TENANT,
    TEST_AGENTS,
    VICTIM,
    Bed,
    World,
    b64,
    forged_record,
    random_uid,
)


def _record_gid(bed: Bed) -> str:
    """The gid the tenant writes into a forged record: its own record's if its Service
    shows one, else any (it matters little: what is tested is which volume, server
    and Secret the record can reach)."""
    recorded = (bed.own_service["metadata"].get("annotations") or {}).get(ANN_INTENT_GID)
    return recorded or "2999"


def _forge(
    bed: Bed,
    *,
    volume_name: str,
    rest_url: str,
    secret: tuple[str, str] | None = (CONTROLLER_NAMESPACE, ADMIN_SECRET),
) -> str:
    """The tenant's forgery: its own claim's Service, copied under a random claim uid
    with a claim name that exists nowhere; returns that uid."""
    uid = random_uid()
    body = forged_record(
        bed.own_service,
        namespace=TENANT,
        claim_uid=uid,
        claim_name=f"gone-{uid[:8]}",
        class_name=bed.storage_class,
        volume_name=volume_name,
        gid=_record_gid(bed),
        rest_url=rest_url,
        secret=secret,
    )
    bed.world.tenant.create("services", body)
    return uid


# -- 1. deleting anyone's volume --------------------------------------------------------


def test_forged_record_cannot_delete_operator_volume(bed: Bed) -> None:
    """Attack 1 (deleting anyone's volume), against an operator's volume.

    The tenant copies the Service the controller wrote for its own claim, gives it a
    random claim uid, a claim name that does not exist, and the name of a Heketi
    volume an operator made with heketi-cli outside Kubernetes. Without the fix the
    orphan sweep takes the record for a crash leftover ("claim gone, no PV") and
    deletes that volume with the admin key: any tenant can destroy any named volume
    on the Heketi server.
    """
    world = bed.world
    operator = world.operator_volume("operator-archive")
    _forge(bed, volume_name=operator.name, rest_url=world.sim.url)

    def deleted() -> str | None:
        if world.heketi_volume(volume_id=operator.id) is None:
            return f"operator volume {operator.name} ({operator.id}) deleted"
        return None

    outcome = world.after_sweeps(deleted)
    survived = world.heketi_volume(volume_id=operator.id) is not None
    assert survived, f"{outcome}\ncontroller said: {world.controller_said(operator.id)}"


def test_forged_record_cannot_delete_other_tenants_bound_volume(bed: Bed) -> None:
    """Attack 1 (deleting anyone's volume), against another tenant's bound volume.

    Same forgery, naming the Heketi volume behind tenant-b's Bound PV (``pvc-<uid>``:
    PV names are visible cluster-wide). Without the fix the sweep deletes it while
    its PV stays Bound: tenant-b's pods lose their data, and nothing in tenant-b's
    namespace shows why.
    """
    world = bed.world
    volume_id = bed.victim_pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID]
    victim_volume = world.heketi_volume(volume_id=volume_id)
    assert victim_volume is not None
    _forge(bed, volume_name=victim_volume["name"], rest_url=world.sim.url)

    def deleted() -> str | None:
        if world.heketi_volume(volume_id=volume_id) is None:
            return f"{VICTIM}'s volume {victim_volume['name']} ({volume_id}) deleted"
        return None

    outcome = world.after_sweeps(deleted)
    survived = world.heketi_volume(volume_id=volume_id) is not None
    assert survived, f"{outcome}\ncontroller said: {world.controller_said(volume_id)}"
    pv = world.get("persistentvolumes", bed.victim_pv["metadata"]["name"])
    assert pv is not None and (pv.get("status") or {}).get("phase") == "Bound", pv
    claim = world.get("persistentvolumeclaims", "data", VICTIM)
    assert claim is not None and (claim.get("status") or {}).get("phase") == "Bound", claim


def test_forged_missing_secret_cannot_use_remembered_key(bed: Bed) -> None:
    """Attack 2's fallback, aimed at attack 1's target.

    The forged record names the real Heketi server and a Secret that does not exist
    (so no key can be read for it). Without the fix the controller falls back to the
    admin key it remembers for that server (it used it to provision the tenant's own
    claim) and deletes the operator's volume with it.
    """
    world = bed.world
    operator = world.operator_volume("operator-scratch")
    _forge(
        bed,
        volume_name=operator.name,
        rest_url=world.sim.url,
        secret=(TENANT, "no-such-secret"),
    )

    def deleted() -> str | None:
        if world.heketi_volume(volume_id=operator.id) is None:
            return f"operator volume {operator.name} ({operator.id}) deleted"
        return None

    outcome = world.after_sweeps(deleted)
    survived = world.heketi_volume(volume_id=operator.id) is not None
    assert survived, f"{outcome}\ncontroller said: {world.controller_said(operator.id)}"


# -- 2. sending the admin key's tokens to the tenant --------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param((CONTROLLER_NAMESPACE, ADMIN_SECRET), id="admin-secret"),
        pytest.param(None, id="no-secret-reference"),
    ],
)
def test_forged_resturl_gets_no_request(bed: Bed, secret: tuple[str, str] | None) -> None:
    """Attack 2 (sending the admin key's tokens to the tenant).

    The forged record's resturl is a server the tenant runs, answering like Heketi
    (it lists a volume of the recorded name and answers DELETE with a 202 whose
    Location is another path, to get that path signed too). ``admin-secret``: the
    record names the real admin Secret; without the fix the controller reads it and
    sends admin-signed JWTs for GET /volumes, GET /volumes/{id}, DELETE and the
    Location path: the tenant can replay them against the real Heketi within their
    lifetime (``qsh`` pins method and path, but ``GET /volumes`` and a
    ``DELETE /volumes/{id}`` of the tenant's choosing are exactly what it wants).
    ``no-secret-reference``: no Secret, so no key; the controller must still not be
    steered to the tenant's server. No request may reach it. (A *missing* Secret
    naming the tenant's server gets nothing even today: the remembered key is per
    URL; that fallback is tested against the real server, above.)
    """
    world = bed.world
    own_volume = world.heketi_volume(name=f"pvc-{bed.own_claim['metadata']['uid']}")
    assert own_volume is not None
    bait = dict(own_volume, id="0123456789abcdef0123456789abcdef", name="pvc-bait")
    capture = world.capture_server(bait)
    _forge(bed, volume_name="pvc-bait", rest_url=capture.url, secret=secret)

    outcome = world.after_sweeps(lambda: capture.summary() if capture.seen() else None)
    if capture.seen():
        # For the message only: let the attack run on to the DELETE and the path its
        # 202 pointed at (bounded; a timeout here is no verdict).
        with contextlib.suppress(AssertionError):
            wait_for(lambda: any(r.path == "/any/path" for r in capture.seen()), 5.0)
    reached = len(capture.seen())
    assert reached == 0, f"{outcome}\ncapture server got {capture.summary()}"


# -- Secrets named by a tenant ---------------------------------------------------------------


def test_forged_secret_reference_is_not_read(bed: Bed) -> None:
    """Attack 2 (Secret reference), aimed at another tenant's Secret.

    tenant-b keeps a Heketi key in a Secret of its own namespace. The forged record
    (in tenant-a) names that Secret. Without the fix the controller GETs it with its
    cluster-wide Secret read permission: the tenant makes the controller read (and
    use, towards a server the tenant names) any Secret in the cluster. The controller
    may read no Secret but the one its StorageClass names.
    """
    world = bed.world
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "their-heketi", "namespace": VICTIM},
        "type": "kubernetes.io/glusterfs",
        "data": {"key": b64("tenant-b-private-key-0123456789abcdef")},
    }
    world.victim.create("secrets", secret)
    _forge(
        bed,
        volume_name=f"pvc-{random_uid()}",
        rest_url=world.sim.url,
        secret=(VICTIM, "their-heketi"),
    )
    allowed = (CONTROLLER_NAMESPACE, ADMIN_SECRET)

    def foreign() -> list[str]:
        return [
            f"{r.verb} secrets {r.namespace or '*'}/{r.name or '*'}"
            for r in world.sandbox.request_log
            if r.resource == "secrets"
            and r.user_agent not in TEST_AGENTS
            and not (
                (r.namespace, r.name) == allowed
                or (r.verb in ("list", "watch") and r.namespace == CONTROLLER_NAMESPACE)
            )
        ]

    outcome = world.after_sweeps(lambda: "; ".join(foreign()) or None)
    read = len(foreign())
    assert read == 0, f"{outcome}\nevery Secret request: {world.controller_secret_reads()}"


# -- 3. sharing another tenant's GID ----------------------------------------------------------

_ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize(
    "spell",
    [
        pytest.param(str, id="ascii"),
        pytest.param(lambda gid: str(gid).translate(_ARABIC_INDIC), id="arabic-indic-digits"),
        pytest.param(lambda gid: f"{str(gid)[:1]}_{str(gid)[1:]}", id="underscore"),
        pytest.param(lambda gid: f"+{gid}", id="plus-sign"),
    ],
)
def test_precreated_service_cannot_choose_gid(world: World, spell: Callable[[int], str]) -> None:
    """Attack 3 (sharing another tenant's GID).

    While its WaitForFirstConsumer claim waits for a node, the tenant creates the
    Service ``glusterfs-dynamic-<own claim uid>`` itself, with an intent record whose
    GID is the one tenant-b's volume of the same class has (spelled as ``int()``
    also reads it: Arabic-Indic digits, ``2_000``, ``+2000``). Without the fix the
    controller takes the record as an earlier attempt's and creates the tenant's
    volume with that GID: the tenant's pods, running with it as supplemental group,
    can then read and write tenant-b's files wherever the two meet (a shared brick
    host, a node mounting both).
    """
    storage_class = world.storage_class("gluster-wffc", binding_mode="WaitForFirstConsumer")
    world.start_controller()
    world.victim.claim("data", storage_class)
    world.sandbox.select_node(VICTIM, "data", "node-1")
    victim_pv = world.bound_pv(VICTIM, "data")
    victim_gid = int(victim_pv["metadata"]["annotations"][ANN_GID])

    mine = world.tenant.claim("late", storage_class)
    uid = mine["metadata"]["uid"]
    spelled = spell(victim_gid)
    world.tenant.create(
        "services",
        forged_record(
            None,
            namespace=TENANT,
            claim_uid=uid,
            claim_name="late",
            class_name=storage_class,
            volume_name=f"pvc-{uid}",
            gid=spelled,
            rest_url=world.sim.url,
        ),
    )
    world.sandbox.select_node(TENANT, "late", "node-1")
    pv = world.bound_pv(TENANT, "late")

    gid = pv["metadata"]["annotations"][ANN_GID]
    others = {
        other["metadata"]["name"]: (other["metadata"].get("annotations") or {}).get(ANN_GID)
        for other in world.sandbox.list_objects("persistentvolumes")
        if other["spec"].get("storageClassName") == storage_class
        and other["metadata"]["name"] != pv["metadata"]["name"]
    }
    shared = gid in others.values()
    assert not shared, (
        f"{TENANT}'s PV {pv['metadata']['name']} got GID {gid} (record said {spelled!r}), "
        f"shared with {others}"
    )
    volume = wait_for(
        lambda: world.heketi_volume(volume_id=pv["metadata"]["annotations"][ANN_HEKETI_VOLUME_ID]),
        5.0,
        "the tenant's Heketi volume",
    )
    assert str(volume["gid"]) == gid, f"Heketi volume gid {volume['gid']}, PV says {gid}"

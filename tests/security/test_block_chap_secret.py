"""A tenant against block volumes: the CHAP Secret in its namespace is output, never input.

The tenant may create, change and delete Secrets in its own namespace, including one
named like the CHAP Secret of its claim (``glusterblk-<claim uid>-secret``) before the
controller writes it, or after. None of that may change which Heketi server, key or
block volume the controller uses, put the tenant's values into the PV, or make the
controller delete a Secret that is not the one it made.
"""

from __future__ import annotations

import base64

from provisioner.gluster.block.objects import (
    CHAP_PASSWORD,
    CHAP_SECRET_TYPE,
    CHAP_USERNAME,
    LABEL_CHAP_FOR_CLAIM,
    chap_secret_name,
)
from provisioner.sandbox.waiting import wait_for
from tests.builders import class_body

from .conftest import ADMIN_KEY, ADMIN_SECRET, CONTROLLER_NAMESPACE, TENANT, World, b64

BLOCK = "gluster.org/glusterblock"


def _block_class(world: World, name: str) -> str:
    world.sim.set_block_hosting(size_gb=100)
    body = class_body(
        name, world.sim.url, provisioner=BLOCK,
        restsecretnamespace=CONTROLLER_NAMESPACE, restsecretname=ADMIN_SECRET,
    )  # fmt: skip
    world.admin.create("storageclasses", body)
    return name


def _planted(name: str, *, labels: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": TENANT, "labels": labels or {}},
        "type": CHAP_SECRET_TYPE,
        "data": {CHAP_USERNAME: b64("tenant-user"), CHAP_PASSWORD: b64("tenant-chosen")},
    }


def _decoded(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def test_a_pre_created_chap_secret_is_replaced_not_trusted(world: World) -> None:
    world.start_controller()
    # The claim comes first, its class later: the tenant knows the uid, and so the
    # Secret's name, before the controller can act.
    claim = world.tenant.claim("db", "block")
    uid = claim["metadata"]["uid"]
    name = chap_secret_name(uid)
    world.tenant.create("secrets", _planted(name, labels={LABEL_CHAP_FOR_CLAIM: uid}))
    _block_class(world, "block")

    pv = world.bound_pv(TENANT, "db")
    [block] = world.sim.block_volumes()
    secret = world.get("secrets", name, TENANT)
    assert secret is not None
    assert pv["spec"]["iscsi"]["secretRef"] == {"name": name, "namespace": TENANT}
    data = _decoded(secret)
    assert data[CHAP_USERNAME] == block["blockvolume"]["username"]
    assert data[CHAP_PASSWORD] == block["blockvolume"]["password"]
    assert "tenant-chosen" not in str(pv)
    # The only key the controller read is the class's; the planted Secret was looked
    # at by name (get), replaced (delete) and written (create), nothing else.
    reads = world.controller_secret_reads()
    assert any(f"get secrets {CONTROLLER_NAMESPACE}/{ADMIN_SECRET}" in r for r in reads)
    assert {r.split(" ")[0] for r in reads if f"{TENANT}/" in r} <= {"create", "get", "delete"}
    assert not [r for r in reads if r.startswith(("list", "watch", "update", "patch"))]
    assert any(r.startswith(f"delete secrets {TENANT}/{name}") for r in reads)
    log = world.controller.output() if world.controller else ""
    assert block["blockvolume"]["password"] not in log
    assert ADMIN_KEY not in log


def test_a_tenant_changing_the_chap_secret_changes_nothing_the_controller_does(
    world: World,
) -> None:
    world.start_controller()
    _block_class(world, "block")
    world.tenant.claim("db", "block")
    world.tenant.claim("other", "block")
    pv = world.bound_pv(TENANT, "db")
    other = world.bound_pv(TENANT, "other")
    name = pv["spec"]["iscsi"]["secretRef"]["name"]
    other_name = other["spec"]["iscsi"]["secretRef"]["name"]
    ids = {b["name"]: b["id"] for b in world.sim.block_volumes()}

    # The tenant rewrites its CHAP Secret to point at the other claim's volume (label,
    # annotation), and plants a look-alike Secret with a name of its choosing.
    world.tenant.api.delete("secrets", name, TENANT)
    forged = _planted(name, labels={LABEL_CHAP_FOR_CLAIM: other["spec"]["claimRef"]["uid"]})
    forged["metadata"]["annotations"] = {
        "heketi-provisioner.gluster.org/block-volume-id": ids[other["metadata"]["name"]]
    }
    world.tenant.create("secrets", forged)
    decoy = _planted("keep-me", labels={LABEL_CHAP_FOR_CLAIM: pv["spec"]["claimRef"]["uid"]})
    world.tenant.create("secrets", decoy)

    world.tenant.api.delete("persistentvolumeclaims", "db", TENANT)
    wait_for(
        lambda: world.get("persistentvolumes", pv["metadata"]["name"]) is None,
        30.0,
        "the PV of the deleted claim to go",
    )
    remaining = {b["name"] for b in world.sim.block_volumes()}
    assert remaining == {other["metadata"]["name"]}  # exactly the deleted claim's volume went
    # The rewritten Secret is not labelled for this claim any more: it is the
    # tenant's now and stays; so does the decoy (never named by any PV); the other
    # claim's Secret is untouched.
    assert world.get("secrets", name, TENANT) is not None
    assert world.get("secrets", "keep-me", TENANT) is not None
    assert world.get("secrets", other_name, TENANT) is not None


def test_nfs_pvs_take_nothing_from_the_tenant_namespace(world: World) -> None:
    """An NFS class's server comes from the class only: a tenant's Endpoints and
    Service named like a glusterfs PV's pair are neither used nor deleted."""
    world.start_controller()
    claim = world.tenant.claim("shared", "nfs")
    uid = claim["metadata"]["uid"]
    pair = f"glusterfs-dynamic-{uid}"
    world.tenant.create("services", {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": pair, "namespace": TENANT},
        "spec": {"ports": [{"port": 1}]},
    })  # fmt: skip
    world.tenant.create("endpoints", {
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": pair, "namespace": TENANT},
        "subsets": [{"addresses": [{"ip": "203.0.113.66"}], "ports": [{"port": 1}]}],
    })  # fmt: skip
    body = class_body(
        "nfs", world.sim.url, secret=(CONTROLLER_NAMESPACE, ADMIN_SECRET),
        pvtype="nfs", nfsserver="10.0.0.50",
    )  # fmt: skip
    world.admin.create("storageclasses", body)

    pv = world.bound_pv(TENANT, "shared")
    assert pv["spec"]["nfs"]["server"] == "10.0.0.50"
    assert "203.0.113.66" not in str(pv) and pair not in str(pv)
    world.tenant.api.delete("persistentvolumeclaims", "shared", TENANT)
    wait_for(lambda: not world.sim.volumes(), 30.0, "the Heketi volume to go")
    assert world.get("services", pair, TENANT) is not None
    assert world.get("endpoints", pair, TENANT) is not None

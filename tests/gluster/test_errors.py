"""Failures read as advice, never carry the key, and bad input never reaches Heketi."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from provisioner.controller.contract import InvalidInput, Outcome, ProvisionError
from provisioner.gluster.annotations import ANN_GID

if TYPE_CHECKING:
    from conftest import World

ADMIN_KEY = "admin-Key-7f3c9e1b"
USER_KEY = "user-Key-44aa0d2e"


def provision_error(world: World, claim: dict, sc: dict, **kwargs: Any) -> ProvisionError:
    gluster = kwargs.pop("gluster", None) or world.provisioner(**kwargs)
    with pytest.raises(ProvisionError) as caught:
        gluster.provision(claim, sc)
    assert ADMIN_KEY not in str(caught.value) and USER_KEY not in str(caught.value)
    return caught.value


def test_user_role_is_told_to_use_admin(world: World) -> None:
    sc = world.storage_class(secret=world.secret(key=USER_KEY), restuser="user")
    claim = world.claim(sc)

    error = provision_error(world, claim, sc)

    assert "Administrator access required" in error.message
    assert '"user" role' in error.message
    assert "restuser: admin" in error.message
    assert error.outcome is Outcome.WAIT_FOR_CHANGE


def test_volume_created_by_the_user_role_is_found_after_the_class_is_fixed(
    world: World,
) -> None:
    """Heketi accepted the user-role POST; the admin retry must adopt, not duplicate."""
    gluster = world.provisioner()
    user_class = world.storage_class(secret=world.secret(key=USER_KEY), restuser="user")
    claim = world.claim(user_class)
    provision_error(world, claim, user_class, gluster=gluster)
    admin_class = dict(user_class)
    admin_class["parameters"] = {**user_class["parameters"], "restuser": "admin",
                                 "secretName": world.secret(key=ADMIN_KEY)}  # fmt: skip

    gluster.provision(claim, admin_class)

    assert len(world.sim.volumes()) == 1


def test_wrong_key_says_check_the_credentials_without_quoting_them(world: World) -> None:
    sc = world.storage_class(secret=world.secret(key="not-the-key"))
    error = provision_error(world, world.claim(sc), sc)
    assert "401" in error.message and "credentials" in error.message
    assert "not-the-key" not in error.message
    assert world.sim.volumes() == []


def test_no_space_names_size_and_durability(world: World) -> None:
    sc = world.storage_class(volumetype="replicate:3")
    error = provision_error(world, world.claim(sc, size="5000Gi"), sc)
    assert "Heketi has no room for a 5000 GiB replicate:3 volume" in error.message
    assert error.outcome is Outcome.RETRY


def test_unreachable_heketi_names_the_url_and_the_gid_stays_with_the_claim(
    world: World,
) -> None:
    """The intent record names the gid, so it stays reserved
    for that claim (and its retry uses it) instead of going to the next claim."""
    gluster = world.provisioner()
    sc = world.storage_class()
    url = world.sim.url
    # A first claim: the nodes' storage addresses are read (and kept) before the
    # create, so the outage below hits the create itself, after the record.
    gluster.provision(world.claim(sc), sc)
    failed = world.claim(sc)
    world.sim.down()
    try:
        error = provision_error(world, failed, sc, gluster=gluster)
    finally:
        world.sim.up()
    assert error.message.startswith(f"cannot reach Heketi at {url}: ")
    assert error.outcome is Outcome.RETRY
    pv = gluster.provision(world.claim(sc), sc)
    assert pv["metadata"]["annotations"][ANN_GID] == "2002"
    retried = gluster.provision(failed, sc)
    assert retried["metadata"]["annotations"][ANN_GID] == "2001"


def test_heketi_rejection_is_quoted(world: World) -> None:
    sc = world.storage_class()
    world.sim.faults.fail_next("volume_create", status=400, text="Invalid replica value")
    error = provision_error(world, world.claim(sc), sc)
    assert "400 Invalid replica value" in error.message
    assert error.outcome is Outcome.WAIT_FOR_CHANGE


BAD_PARAMETERS = [
    ({"resturl": ""}, "resturl"),
    ({"resturl": "ftp://heketi:8080"}, "resturl"),
    ({"clusterid": "xyz"}, "clusterid"),
    ({"gidMin": "100"}, "gidMin"),
    ({"gidMin": "5000", "gidMax": "4000"}, "gid"),
    ({"volumetype": "replicate:5"}, "volumetype"),
    ({"volumetype": "disperse:3:1"}, "volumetype"),
    ({"volumenameprefix": "a_b"}, "volumenameprefix"),
    ({"snapfactor": "200"}, "snapfactor"),
    ({"customepnameprefix": "X" * 30}, "customepnameprefix"),
    ({"colour": "blue"}, "colour"),
    ({"secretName": "only-name", "secretNamespace": ""}, "secret"),
]


@pytest.mark.parametrize(("params", "named"), BAD_PARAMETERS)
def test_bad_parameters_make_no_heketi_request(
    world: World, params: dict[str, str], named: str
) -> None:
    sc = world.storage_class(secret=None, restuserkey=ADMIN_KEY, **params)
    error = provision_error(world, world.claim(sc), sc)
    assert isinstance(error, InvalidInput)
    assert named in error.message
    assert sc["metadata"]["name"] in error.message
    assert world.heketi_requests() == 0


BAD_CLAIMS = [
    ({"accessModes": ["ReadWriteOncePod"]}, "spec.accessModes"),
    ({"volumeMode": "Block"}, "spec.volumeMode"),
    ({"selector": {"matchLabels": {"a": "b"}}}, "spec.selector"),
    ({"resources": {"requests": {}}}, "spec.resources.requests.storage"),
    ({"dataSource": {"kind": "PersistentVolumeClaim", "name": "x"}}, "spec.dataSource"),
]


@pytest.mark.parametrize(("spec", "named"), BAD_CLAIMS)
def test_bad_claims_make_no_heketi_request(world: World, spec: dict, named: str) -> None:
    sc = world.storage_class()
    claim = world.claim(sc)
    claim["spec"].update(spec)  # as the controller would see it (some the API refuses)
    error = provision_error(world, claim, sc)
    assert isinstance(error, InvalidInput)
    assert named in error.message
    assert world.heketi_requests() == 0


def test_concurrency_towards_heketi_is_capped(world: World) -> None:
    """With the cap at Heketi's own limit no create is ever refused with 429."""
    from concurrent.futures import ThreadPoolExecutor

    world.sim.set_max_inflight(2)
    world.sim.set_latency({"volume_create": 0.05})
    gluster = world.provisioner(heketi_concurrency=2)
    sc = world.storage_class()
    claims = [world.claim(sc) for _ in range(8)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        pvs = list(pool.map(lambda c: gluster.provision(c, sc), claims))

    assert len(world.sim.volumes()) == 8
    assert len({pv["metadata"]["annotations"][ANN_GID] for pv in pvs}) == 8
    assert not any(key.endswith(" 429") for key in world.counts())


def test_the_key_never_reaches_a_log_record(
    world: World, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    # configure_logging (run by other tests in this process) sets heketi_client's own level.
    caplog.set_level(logging.DEBUG, logger="heketi_client")
    gluster = world.provisioner()
    sc = world.storage_class()
    world.sim.faults.lose_result_next("volume_create")
    with pytest.raises(ProvisionError):
        gluster.provision(world.claim(sc), sc)
    claim = world.claim(sc)
    pv = gluster.provision(claim, sc)
    gluster.delete(pv)
    bad = world.storage_class(secret=world.secret(key="wrong-" + ADMIN_KEY))
    with pytest.raises(ProvisionError):
        gluster.provision(world.claim(bad), bad)

    assert caplog.records  # something was logged, so the check below means something
    text = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    printed = capsys.readouterr()  # structlog renders to the console directly
    assert "heketi request" in text  # heketi_client logs through the standard logging module
    assert ADMIN_KEY not in text + printed.out + printed.err

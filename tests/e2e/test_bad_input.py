"""Bad input gets a Warning on the claim naming what is wrong, and Heketi sees nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Cluster

ADMIN_KEY = "e2e-admin-key-0123456789abcdef"
GOOD_CLUSTER = "0" * 32

# (id, class parameters (None removes one), claim spec changes, text the event must contain)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("no-resturl", {"resturl": None}, {}, "resturl"),
    ("resturl-ftp", {"resturl": "ftp://heketi:8080"}, {}, "resturl"),
    ("resturl-credentials", {"resturl": "http://u:p@heketi:8080"}, {}, "resturl"),
    ("resturl-query", {"resturl": "http://heketi:8080/?a=b"}, {}, "resturl"),
    ("unknown-key", {"colour": "blue"}, {}, "colour"),
    ("misspelt-key", {"volumtype": "none"}, {}, "volumtype"),
    ("key-twice", {"RESTURL": "http://other:8080"}, {}, "RESTURL"),
    ("clusterid-short", {"clusterid": "abc"}, {}, "clusterid"),
    ("gidmin-low", {"gidMin": "100"}, {}, "gidMin"),
    ("gidmin-text", {"gidMin": "two"}, {}, "gidMin"),
    ("gidmax-below-min", {"gidMin": "5000", "gidMax": "4000"}, {}, "gidMax"),
    ("gidmax-huge", {"gidMax": "3000000000"}, {}, "gidMax"),
    ("replica-5", {"volumetype": "replicate:5"}, {}, "volumetype"),
    ("disperse-3-1", {"volumetype": "disperse:3:1"}, {}, "volumetype"),
    ("volumetype-mirror", {"volumetype": "mirror"}, {}, "volumetype"),
    ("nameprefix-underscore", {"volumenameprefix": "a_b"}, {}, "volumenameprefix"),
    ("nameprefix-dot", {"volumenameprefix": "a.b"}, {}, "volumenameprefix"),
    ("snapfactor-low", {"snapfactor": "0.5"}, {}, "snapfactor"),
    ("snapfactor-text", {"snapfactor": "lots"}, {}, "snapfactor"),
    ("epprefix-long", {"customepnameprefix": "e" * 27}, {}, "customepnameprefix"),
    ("epprefix-upper", {"customepnameprefix": "Glusterfs"}, {}, "customepnameprefix"),
    ("secret-name-only", {"secretNamespace": None}, {}, "secretNamespace"),
    ("access-rwop", {}, {"accessModes": ["ReadWriteOncePod"]}, "spec.accessModes"),
    ("block-mode", {}, {"volumeMode": "Block"}, "spec.volumeMode"),
    ("data-source", {}, {"dataSource": {"kind": "PersistentVolumeClaim", "name": "x"}},
     "spec.dataSource"),
    ("selector", {}, {"selector": {"matchLabels": {"tier": "gold"}}}, "selector"),
    ("disperse-8-5", {"volumetype": "disperse:8:5"}, {}, "volumetype"),
]  # fmt: skip

SECRET_CASES = [
    ("secret-missing", {"secret": "no-such-secret"}, "does not exist"),
    ("secret-opaque", {"type_": "Opaque"}, "kubernetes.io/glusterfs"),
    ("secret-no-key", {"entry": "password"}, '"password"'),
]


def assert_rejected(cluster: Cluster, claim: dict, expected: str) -> None:
    before = len(cluster.sim.requests)
    message = cluster.warning(claim)
    assert expected in message, message
    assert ADMIN_KEY not in message
    assert len(cluster.sim.requests) == before == 0  # Heketi saw nothing, ever
    fresh = cluster.fresh_claim(claim)
    assert fresh is not None and not fresh["spec"].get("volumeName")


@pytest.mark.parametrize(("params", "spec", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_class_or_claim(
    shared_cluster: Cluster, params: dict[str, Any], spec: dict[str, Any], expected: str
) -> None:
    cluster = shared_cluster
    sc = cluster.storage_class(**params)
    claim = cluster.claim(sc, **spec)
    assert_rejected(cluster, claim, expected)


@pytest.mark.parametrize(("secret", "expected"), [c[1:] for c in SECRET_CASES],
                         ids=[c[0] for c in SECRET_CASES])  # fmt: skip
def test_bad_secret(shared_cluster: Cluster, secret: dict[str, Any], expected: str) -> None:
    cluster = shared_cluster
    name = secret.get("secret") or cluster.secret(**secret)
    claim = cluster.claim(cluster.storage_class(secret=name))
    message = cluster.warning(claim)
    assert expected in message and name in message, message
    assert len(cluster.sim.requests) == 0


def test_the_process_keeps_serving_good_claims(shared_cluster: Cluster) -> None:
    """Runs last in this module: the only test here that may reach Heketi."""
    cluster = shared_cluster
    pv = cluster.bound_pv(cluster.claim(cluster.storage_class()))
    assert pv["spec"]["glusterfs"]["path"].startswith("pvc-")

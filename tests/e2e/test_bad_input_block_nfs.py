"""Bad input on glusterblock and ``pvtype: nfs`` classes: a Warning on the claim naming
the key (as written) or the claim field, and Heketi sees nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.test_bad_input import assert_rejected

if TYPE_CHECKING:
    from conftest import Cluster

BLOCK = "gluster.org/glusterblock"

# (id, class parameters (None removes one), claim spec changes, text the event must contain)
BLOCK_CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("no-resturl", {"resturl": None}, {}, "resturl"),
    ("unknown-key", {"volumetype": "replicate:3"}, {}, "volumetype"),
    ("file-secret-keys", {"secretName": "x", "secretNamespace": "default"}, {}, "secretName"),
    ("hacount-zero", {"hacount": "0"}, {}, "hacount"),
    ("hacount-text", {"HaCount": "three"}, {}, "HaCount"),
    ("clusterids-short", {"clusterids": "abc"}, {}, "clusterids"),
    ("nameprefix-underscore", {"volumenameprefix": "a_b"}, {}, "volumenameprefix"),
    ("fstype-space", {"fstype": "x fs"}, {}, "fstype"),
    ("opmode-gluster-block", {"opmode": "gluster-block"}, {}, "opmode"),
    ("blockmodeargs", {"blockmodeargs": "glustervol=v,hosts=1.2.3.4"}, {}, "blockmodeargs"),
    ("restsecretname-only", {"restsecretname": "s"}, {}, "restsecretname"),
    ("rwx", {}, {"accessModes": ["ReadWriteMany"]}, "spec.accessModes"),
    ("rwx-and-rwo", {}, {"accessModes": ["ReadWriteOnce", "ReadWriteMany"]},
     "spec.accessModes"),
    ("selector", {}, {"selector": {"matchLabels": {"a": "b"}}}, "spec.selector"),
    ("data-source", {}, {"dataSource": {"kind": "PersistentVolumeClaim", "name": "x"}},
     "spec.dataSource"),
]  # fmt: skip

NFS_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("no-nfsserver", {"pvtype": "nfs"}, "nfsserver"),
    ("nfsserver-url", {"pvtype": "nfs", "nfsServer": "nfs://vip/"}, "nfsServer"),
    ("nfsserver-port", {"pvtype": "nfs", "nfsserver": "vip:2049"}, "nfsserver"),
    ("pvtype-cephfs", {"pvType": "cephfs"}, "pvType"),
    ("ganesha-off", {"pvtype": "nfs", "nfsserver": "vip", "volumeoptions": "ganesha.enable off"},
     "volumeoptions"),
]  # fmt: skip


@pytest.mark.parametrize(("params", "spec", "expected"), [c[1:] for c in BLOCK_CASES],
                         ids=[c[0] for c in BLOCK_CASES])  # fmt: skip
def test_bad_block_class_or_claim(
    shared_cluster: Cluster, params: dict[str, Any], spec: dict[str, Any], expected: str
) -> None:
    cluster = shared_cluster
    base: dict[str, Any] = {"secretNamespace": None, "secretName": None}
    sc = cluster.storage_class(secret=None, provisioner=BLOCK, **{**base, **params})
    claim = cluster.claim(sc, **spec)
    assert_rejected(cluster, claim, expected)


@pytest.mark.parametrize(("params", "expected"), [c[1:] for c in NFS_CASES],
                         ids=[c[0] for c in NFS_CASES])  # fmt: skip
def test_bad_nfs_class(shared_cluster: Cluster, params: dict[str, Any], expected: str) -> None:
    cluster = shared_cluster
    claim = cluster.claim(cluster.storage_class(**params))
    assert_rejected(cluster, claim, expected)


def test_block_secret_of_another_type_is_named(shared_cluster: Cluster) -> None:
    cluster = shared_cluster
    secret = cluster.secret(type_="Opaque")
    sc = cluster.storage_class(
        secret=None, provisioner=BLOCK, secretNamespace=None, secretName=None,
        restsecretnamespace="default", restsecretname=secret,
    )  # fmt: skip
    claim = cluster.claim(sc)
    assert_rejected(cluster, claim, BLOCK)

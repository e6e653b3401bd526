"""Kubernetes gitVersion parsing and the 1.25 glusterfs cut-off."""

from __future__ import annotations

import pytest

from provisioner.gluster.gate import glusterfs_mountable
from provisioner.k8s.versions import VersionError, parse_kube_version


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("v1.30.2", (1, 30)),
        ("v1.25.16+k3s1", (1, 25)),
        ("v1.27.3-gke.100", (1, 27)),
        ("v1.26.0-rc.1", (1, 26)),
        ("v1.9.11", (1, 9)),
        ("1.24.3", (1, 24)),
        ("v1.28", (1, 28)),
        (" v1.29.1 ", (1, 29)),
    ],
)
def test_parse(text: str, version: tuple[int, int]) -> None:
    assert parse_kube_version(text) == version


@pytest.mark.parametrize("text", ["", "v", "latest", "v1", "vX.Y.Z", "v1.x.3", "1-25"])
def test_garbage(text: str) -> None:
    with pytest.raises(VersionError, match="cannot read Kubernetes version"):
        parse_kube_version(text)


@pytest.mark.parametrize(
    ("version", "mountable"),
    [((1, 20), True), ((1, 25), True), ((1, 26), False), ((1, 31), False), ((2, 0), False)],
)
def test_glusterfs_mountable(version: tuple[int, int], mountable: bool) -> None:
    assert glusterfs_mountable(version) is mountable

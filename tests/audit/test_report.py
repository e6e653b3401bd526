"""The report without a cluster: name recognition, problem count, exit code, table."""

from __future__ import annotations

import json

import pytest

from provisioner.audit.compare import claim_uid_of_volume
from provisioner.audit.report import (
    AuditReport,
    Duplicate,
    DuplicateVolume,
    GidCollision,
    MissingEndpoints,
    MissingVolume,
    Orphan,
    ServerSummary,
    render_table,
)

UID = "0b6d3c4e-8f21-4a7b-9c3d-5e6f7a8b9c0d"


@pytest.mark.parametrize(
    ("name", "uid"),
    [
        (f"pvc-{UID}", UID),
        (f"pvc-{UID.upper()}", UID),
        (f"app_default_db_{UID}", UID),
        (f"app_my-ns_my-claim-1_{UID}", UID),
        ("vol_0123456789abcdef0123456789abcdef", None),
        ("heketidbstorage", None),
        (f"pvc-{UID}-x", None),
        (f"a_b_{UID}", None),  # too few parts
        (f"a_b_c_d_{UID}", None),  # too many: a prefix cannot hold "_"
    ],
)
def test_claim_uid_of_volume(name: str, uid: str | None) -> None:
    assert claim_uid_of_volume(name) == uid


def full_report(errors: tuple[str, ...] = ()) -> AuditReport:
    server = "http://heketi:8080"
    return AuditReport(
        provisioner="gluster.org/heketi",
        servers=(ServerSummary(server, 10, 7),),
        heketi_volumes=7,
        pvs=6,
        orphans=(Orphan(server, "a" * 32, f"pvc-{UID}", UID, None),),
        missing_volumes=(MissingVolume("pvc-x", server, "b" * 32, "pvc-x", "ns/c (Bound)"),),
        duplicates=(
            Duplicate(
                UID,
                (DuplicateVolume(server, "c" * 32, "n1"), DuplicateVolume(server, "d" * 32, "n2")),
                "pvc-y",
            ),
        ),
        missing_endpoints=(MissingEndpoints("pvc-z", "ns", "glusterfs-dynamic-z"),),
        missing_services=(MissingEndpoints("pvc-w", "ns", "glusterfs-dynamic-w"),),
        gid_collisions=(GidCollision("fast", 2001, ("pvc-1", "pvc-2")),),
        errors=errors,
    )


def test_problems_counts_every_finding() -> None:
    report = full_report()
    assert report.problems == 6
    assert report.exit_code() == 1
    assert AuditReport(provisioner="p").exit_code() == 0
    assert full_report(errors=("Heketi at x: unreachable",)).exit_code() == 2
    assert AuditReport(provisioner="p", errors=("e",)).exit_code() == 2


def test_json_round_trip_keeps_every_finding() -> None:
    data = json.loads(full_report().to_json())
    assert data["problems"] == 6
    assert data["duplicates"][0]["volumes"][1]["volume_id"] == "d" * 32
    assert data["gid_collisions"] == [
        {"storage_class": "fast", "gid": 2001, "pvs": ["pvc-1", "pvc-2"]}
    ]
    assert data["servers"] == [
        {"url": "http://heketi:8080", "volumes": 10, "ours": 7, "error": None}
    ]


def test_table_shows_each_section_and_the_verdict() -> None:
    text = render_table(full_report(errors=("Heketi at x: unreachable",)))
    for needle in (
        "Orphaned Heketi volumes (no PV) (1):",
        "PVs whose Heketi volume is missing (1):",
        "Several Heketi volumes for one claim (1):",
        "Missing Endpoints (1):",
        "Missing Services (1):",
        "GIDs used by several PVs of one StorageClass (1):",
        "glusterfs-dynamic-z",
        "pvc-1, pvc-2",
        "Heketi at x: unreachable",
        "6 problem(s) found; 1 thing(s) could not be checked",
    ):
        assert needle in text
    clean = render_table(AuditReport(provisioner="p"))
    assert "Orphaned" not in clean
    assert clean.rstrip().endswith("no problems found")

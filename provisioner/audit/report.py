"""What ``heketi-provisioner audit`` found, as data, as JSON and as a table.

The report is the contract with scripts: the JSON keys below are stable, each list
holds one object per finding, and ``problems`` is the number of findings. An audit
that could not look at everything says so in ``errors`` (and exits 2), because a
clean report about half the servers must not read as a clean bill of health.

Kept apart from the gathering (``audit.py``) so that the shapes can be read, tested
and reused without a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "AuditReport",
    "Duplicate",
    "DuplicateVolume",
    "GidCollision",
    "MissingEndpoints",
    "MissingVolume",
    "Orphan",
    "ServerSummary",
    "render_table",
]


@dataclass(frozen=True)
class Orphan:
    """A Heketi volume named like ours that no PV refers to (by id or by name)."""

    server: str
    volume_id: str
    volume_name: str
    claim_uid: str
    claim: str | None = None
    """``namespace/name (phase)`` when the claim still exists: then the volume may be
    in the middle of being provisioned rather than leaked."""


@dataclass(frozen=True)
class MissingVolume:
    """A PV of ours whose Heketi volume is not on its server."""

    pv: str
    server: str
    volume_id: str | None
    volume_name: str | None
    claim: str | None


@dataclass(frozen=True)
class DuplicateVolume:
    server: str
    volume_id: str
    volume_name: str


@dataclass(frozen=True)
class Duplicate:
    """Several Heketi volumes derived from one claim uid (at most one can be in use)."""

    claim_uid: str
    volumes: tuple[DuplicateVolume, ...]
    pv: str | None
    """The PV of that claim, if any; its volume is the one in use."""


@dataclass(frozen=True)
class MissingEndpoints:
    """An Endpoints or Service object a PV needs for mounting, absent."""

    pv: str
    namespace: str
    name: str


@dataclass(frozen=True)
class GidCollision:
    storage_class: str
    gid: int
    pvs: tuple[str, ...]


@dataclass(frozen=True)
class ServerSummary:
    url: str
    volumes: int
    """Every volume on the server, ours or not."""
    ours: int
    error: str | None = None


@dataclass(frozen=True)
class AuditReport:
    provisioner: str
    servers: tuple[ServerSummary, ...] = ()
    heketi_volumes: int = 0
    """Heketi volumes recognised as ours (by name or because a PV of ours names them)."""
    pvs: int = 0
    """PVs whose ``pv.kubernetes.io/provisioned-by`` is our provisioner name."""
    orphans: tuple[Orphan, ...] = ()
    missing_volumes: tuple[MissingVolume, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()
    missing_endpoints: tuple[MissingEndpoints, ...] = ()
    missing_services: tuple[MissingEndpoints, ...] = ()
    gid_collisions: tuple[GidCollision, ...] = ()
    errors: tuple[str, ...] = field(default=())
    """What could not be checked (unreachable Heketi, unknown server of a PV)."""

    @property
    def problems(self) -> int:
        return (
            len(self.orphans)
            + len(self.missing_volumes)
            + len(self.duplicates)
            + len(self.missing_endpoints)
            + len(self.missing_services)
            + len(self.gid_collisions)
        )

    @property
    def complete(self) -> bool:
        return not self.errors

    def exit_code(self) -> int:
        """0 clean, 1 problems found, 2 the audit could not look at everything."""
        if self.errors:
            return 2
        return 1 if self.problems else 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = self.problems
        data["complete"] = self.complete
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# -- the human table ----------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        "  "
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def _section(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    if not rows:
        return []
    return ["", f"{title} ({len(rows)}):", *_table(headers, rows)]


def render_table(report: AuditReport) -> str:
    """The report for a terminal: a summary, then one table per kind of problem."""
    lines = [f"provisioner {report.provisioner}: {report.pvs} PVs, {report.heketi_volumes} "
             f"Heketi volumes of ours on {len(report.servers)} server(s)"]  # fmt: skip
    lines += _table(
        ["HEKETI", "VOLUMES", "OURS", "STATUS"],
        [(s.url, s.volumes, s.ours, s.error or "ok") for s in report.servers],
    )
    lines += _section(
        "Orphaned Heketi volumes (no PV)",
        ["HEKETI", "VOLUME ID", "NAME", "CLAIM"],
        [(o.server, o.volume_id, o.volume_name, o.claim) for o in report.orphans],
    )
    lines += _section(
        "PVs whose Heketi volume is missing",
        ["PV", "HEKETI", "VOLUME ID", "PATH", "CLAIM"],
        [(m.pv, m.server, m.volume_id, m.volume_name, m.claim) for m in report.missing_volumes],
    )
    lines += _section(
        "Several Heketi volumes for one claim",
        ["CLAIM UID", "PV", "VOLUMES"],
        [
            (d.claim_uid, d.pv, ", ".join(f"{v.volume_id} ({v.volume_name})" for v in d.volumes))
            for d in report.duplicates
        ],
    )
    lines += _section(
        "Missing Endpoints",
        ["PV", "NAMESPACE", "ENDPOINTS"],
        [(m.pv, m.namespace, m.name) for m in report.missing_endpoints],
    )
    lines += _section(
        "Missing Services",
        ["PV", "NAMESPACE", "SERVICE"],
        [(m.pv, m.namespace, m.name) for m in report.missing_services],
    )
    lines += _section(
        "GIDs used by several PVs of one StorageClass",
        ["STORAGECLASS", "GID", "PVS"],
        [(g.storage_class, g.gid, ", ".join(g.pvs)) for g in report.gid_collisions],
    )
    if report.errors:
        lines += ["", "Could not check (the audit is incomplete):"]
        lines += [f"  {error}" for error in report.errors]
    lines.append("")
    verdict = f"{report.problems} problem(s) found" if report.problems else "no problems found"
    if report.errors:
        verdict += f"; {len(report.errors)} thing(s) could not be checked"
    lines.append(verdict)
    return "\n".join(lines) + "\n"

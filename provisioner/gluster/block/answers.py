"""Checks on Heketi's block volume answer before anything is written from it.

A PV's ``spec.iscsi`` comes straight from this answer, so a wrong or hostile Heketi
must not be able to make us write a PV the API server refuses (that would leave the
block volume with no PV) or one that points the kubelet somewhere odd. The rules are
those the API server applies to an iSCSI source, plus: CHAP asked for means
credentials must come back.
"""

from __future__ import annotations

import ipaddress
import re

from heketi_client import BlockVolumeInfo

__all__ = ["answer_problem"]

_IQN = re.compile(r"iqn\.\d{4}-\d{2}\.[A-Za-z0-9.-]+(:[^,;*&$|\s]+)$")
_EUI = re.compile(r"eui\.[A-Za-z0-9]{16}")
_NAA = re.compile(r"naa\.[A-Za-z0-9]{32}")
_LABEL = re.compile(r"(?!-)[a-zA-Z0-9-]{1,63}(?<!-)")
MAX_LUN = 255


def _host_ok(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    return 0 < len(host) <= 253 and all(_LABEL.fullmatch(x) for x in host.split("."))


def _iqn_ok(iqn: str) -> bool:
    lower = iqn.lower()
    if lower.startswith("iqn"):
        return bool(_IQN.fullmatch(iqn))
    if lower.startswith("eui"):
        return bool(_EUI.fullmatch(iqn))
    if lower.startswith("naa"):
        return bool(_NAA.fullmatch(iqn))
    return False


def answer_problem(volume: BlockVolumeInfo, *, chap: bool) -> str | None:
    """Why the answer cannot become a PV (None: it can). Never quotes the password."""
    where = f"Heketi block volume {volume.name} ({volume.id})"
    if not volume.hosts:
        return f"{where} lists no hosts to reach its iSCSI target"
    for host in volume.hosts:
        if not _host_ok(host):
            return f'{where} lists host "{host[:64]}", which is not a host name or IP address'
    if not _iqn_ok(volume.iqn):
        return (
            f'{where} has IQN "{volume.iqn[:80]}", which is not an iSCSI name '
            "(iqn.YYYY-MM.domain:name, eui. or naa.)"
        )
    if not 0 <= volume.lun <= MAX_LUN:
        return f"{where} has LUN {volume.lun}, outside 0..{MAX_LUN}"
    if chap and (not volume.username or not volume.password):
        return f"{where} came back without CHAP credentials although chapauthenabled is on"
    return None

"""Validation and defaulting the real API server applies to the kinds we serve.

Only the rules that matter to a storage provisioner (and that a test could trip over)
are emulated; each failure is a 422 whose ``details.causes`` carry the same field paths
the real server reports, e.g. ``spec.resources[storage]``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from . import services
from .resources import ResourceType
from .status import ApiError, invalid

Obj = dict[str, Any]
Cause = tuple[str, str, str]

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$")
_SUFFIX = {
    None: Decimal(1),
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}

ACCESS_MODES = frozenset({"ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"})
PV_SOURCES = (
    "glusterfs",
    "hostPath",
    "nfs",
    "local",
    "csi",
    "iscsi",
    "rbd",
    "cephfs",
    "fc",
    "flexVolume",
    "cinder",
    "awsElasticBlockStore",
    "gcePersistentDisk",
    "azureDisk",
    "azureFile",
    "vsphereVolume",
    "quobyte",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "photonPersistentDisk",
    "flocker",
)
_MSG_DNS = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


def parse_quantity(text: Any) -> Decimal | None:
    """Resource quantity → number, or None if it is not a valid quantity."""
    if isinstance(text, (int, float)):
        return Decimal(str(text))
    if not isinstance(text, str):
        return None
    m = _QUANTITY.match(text.strip())
    if not m:
        return None
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:
        return None
    suffix = m.group(2)
    if suffix and suffix[0] in "eE" and len(suffix) > 1:
        return number * (Decimal(10) ** int(suffix[1:]))
    return number * _SUFFIX[suffix]


def name_causes(rt: ResourceType, name: str) -> list[Cause]:
    if not name:
        return [
            (
                "metadata.name",
                "FieldValueRequired",
                "Required value: name or generateName is required",
            )
        ]
    if rt.group == "rbac.authorization.k8s.io":  # any path segment (system:basic-user)
        problems = [f"may not be '{name}'"] if name in (".", "..") else []
        problems += [f"may not contain '{c}'" for c in "/%" if c in name]
        return [
            ("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {p}')
            for p in problems
        ]
    if rt.plural == "namespaces":
        ok, limit, rule = _LABEL.match(name) is not None, 63, "a lowercase RFC 1123 label"
    elif rt.plural == "services":
        ok, limit, rule = _DNS1035.match(name) is not None, 63, "a DNS-1035 label"
    else:
        ok, limit, rule = _SUBDOMAIN.match(name) is not None, 253, "a lowercase RFC 1123 subdomain"
    causes: list[Cause] = []
    if len(name) > limit:
        causes.append(
            (
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": must be no more than {limit} characters',
            )
        )
    if not ok:
        msg = _MSG_DNS if rule.endswith("subdomain") else f"{rule} must be valid"
        causes.append(("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {msg}'))
    return causes


def _metadata_causes(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    meta = obj.get("metadata") or {}
    for key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                (
                    "metadata.labels",
                    "FieldValueInvalid",
                    f'Invalid value: "{value}": a valid label must be an empty string '
                    "or consist of alphanumeric characters, '-', '_' or '.'",
                )
            )
        if not key or len(key.rsplit("/", 1)[-1]) > 63:
            causes.append(("metadata.labels", "FieldValueInvalid", f'Invalid value: "{key}"'))
    for key, value in (meta.get("annotations") or {}).items():
        if not isinstance(value, str):
            causes.append((f"metadata.annotations[{key}]", "FieldValueInvalid", "must be a string"))
    return causes


def _required(obj: Obj, path: str) -> bool:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or cur.get(part) in (None, "", [], {}):
            return False
        cur = cur[part]
    return True


def _access_mode_causes(spec: Obj) -> list[Cause]:
    modes = spec.get("accessModes") or []
    if not modes:
        return [
            (
                "spec.accessModes",
                "FieldValueRequired",
                "Required value: at least 1 access mode is required",
            )
        ]
    return [
        (
            "spec.accessModes",
            "FieldValueNotSupported",
            f'Unsupported value: "{m}": supported values: "ReadOnlyMany", "ReadWriteMany", '
            '"ReadWriteOnce", "ReadWriteOncePod"',
        )
        for m in modes
        if m not in ACCESS_MODES
    ]


def _claim_causes(obj: Obj) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = _access_mode_causes(spec)
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    path = "spec.resources[storage]"  # the real servers name the key under resources
    if storage is None:
        causes.append((path, "FieldValueRequired", "Required value"))
    else:
        amount = parse_quantity(storage)
        if amount is None:
            causes.append(
                (
                    path,
                    "FieldValueInvalid",
                    f'Invalid value: "{storage}": quantities must match the regular expression',
                )
            )
        elif amount <= 0:
            causes.append(
                (
                    path,
                    "FieldValueInvalid",
                    f'Invalid value: "{storage}": must be greater than zero',
                )
            )
    return causes


def _volume_causes(obj: Obj) -> list[Cause]:
    spec = obj.get("spec") or {}
    causes = _access_mode_causes(spec)
    capacity = spec.get("capacity")
    storage = (capacity or {}).get("storage")
    if not capacity:
        causes.append(("spec.capacity", "FieldValueRequired", "Required value"))
    if storage is None or len(capacity or {}) > 1:
        shown = json.dumps(capacity if capacity is not None else None)
        causes.append(
            (
                "spec.capacity",
                "FieldValueNotSupported",
                f'Unsupported value: {shown}: supported values: "storage"',
            )
        )
    if storage is not None and parse_quantity(storage) is None:
        causes.append(
            ("spec.capacity[storage]", "FieldValueInvalid", f'Invalid value: "{storage}"')
        )
    sources = [s for s in PV_SOURCES if spec.get(s) is not None]
    if not sources:
        causes.append(("spec", "FieldValueRequired", "Required value: must specify a volume type"))
    for extra in sources[1:]:
        causes.append(
            (
                f"spec.{extra}",
                "FieldValueForbidden",
                "Forbidden: may not specify more than 1 volume type",
            )
        )
    gluster = spec.get("glusterfs")
    if isinstance(gluster, dict):
        for field in ("endpoints", "path"):
            if not gluster.get(field):
                causes.append((f"spec.glusterfs.{field}", "FieldValueRequired", "Required value"))
    causes += _iscsi_causes(spec.get("iscsi")) + _nfs_causes(spec.get("nfs"))
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy not in ("Retain", "Delete", "Recycle"):
        causes.append(
            (
                "spec.persistentVolumeReclaimPolicy",
                "FieldValueNotSupported",
                f'Unsupported value: "{policy}": supported values: "Delete", "Recycle", "Retain"',
            )
        )
    return causes


_IQN = re.compile(r"iqn\.\d{4}-\d{2}\.([A-Za-z0-9.-]+)(:[^,;*&$|\s]+)$")
_EUI = re.compile(r"^eui.[A-Za-z0-9]{16}$")
_NAA = re.compile(r"^naa.[A-Za-z0-9]{32}$")


def _iscsi_causes(iscsi: object) -> list[Cause]:
    """The API server's checks of an iSCSI source (validateISCSIPersistentVolumeSource)."""
    if not isinstance(iscsi, dict):
        return []
    causes: list[Cause] = []
    if not iscsi.get("targetPortal"):
        causes.append(("spec.iscsi.targetPortal", "FieldValueRequired", "Required value"))
    iqn = str(iscsi.get("iqn") or "")
    if not iqn:
        causes.append(("spec.iscsi.iqn", "FieldValueRequired", "Required value"))
    else:
        lower = iqn.lower()
        ok = (
            (lower.startswith("iqn") and _IQN.search(iqn))
            or (lower.startswith("eui") and _EUI.search(iqn))
            or (lower.startswith("naa") and _NAA.search(iqn))
        )
        if not ok:
            causes.append(
                (
                    "spec.iscsi.iqn",
                    "FieldValueInvalid",
                    f'Invalid value: "{iqn}": must be valid format starting with iqn, eui, or naa',
                )
            )
    lun = iscsi.get("lun", 0)
    if not isinstance(lun, int) or not 0 <= lun <= 255:
        causes.append(
            (
                "spec.iscsi.lun",
                "FieldValueInvalid",
                f"Invalid value: {lun}: must be between 0 and 255",
            )
        )
    if (iscsi.get("chapAuthDiscovery") or iscsi.get("chapAuthSession")) and not (
        iscsi.get("secretRef") or {}
    ).get("name"):
        causes.append(("spec.iscsi.secretRef", "FieldValueRequired", "Required value"))
    return causes


def _nfs_causes(nfs: object) -> list[Cause]:
    if not isinstance(nfs, dict):
        return []
    causes: list[Cause] = []
    if not nfs.get("server"):
        causes.append(("spec.nfs.server", "FieldValueRequired", "Required value"))
    path = nfs.get("path")
    if not path:
        causes.append(("spec.nfs.path", "FieldValueRequired", "Required value"))
    elif not str(path).startswith("/"):
        causes.append(
            (
                "spec.nfs.path",
                "FieldValueInvalid",
                f'Invalid value: "{path}": must be an absolute path',
            )
        )
    return causes


def _secret_causes(obj: Obj) -> list[Cause]:
    causes: list[Cause] = []
    for key, value in (obj.get("data") or {}).items():
        if not _CONFIG_KEY.match(key):
            causes.append(
                (
                    f"data[{key}]",
                    "FieldValueInvalid",
                    f'Invalid value: "{key}": a valid config key must consist of '
                    "alphanumeric characters, '-', '_' or '.'",
                )
            )
        if not isinstance(value, str):
            causes.append((f"data[{key}]", "FieldValueInvalid", "must be a base64 string"))
    return causes


def decode_secret_data(obj: Obj) -> None:
    """The real server fails to decode non-base64 ``data`` (400) and folds ``stringData`` in."""
    data = obj.get("data") or {}
    for key, value in data.items():
        if isinstance(value, str):
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ApiError(
                    400,
                    f'Secret in version "v1" cannot be handled as a Secret: '
                    f"illegal base64 data in data[{key}]: {exc}",
                ) from None
    string_data = obj.pop("stringData", None)
    if string_data:
        data = dict(data)
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data


def apply_defaults(rt: ResourceType, obj: Obj) -> None:
    """The defaults a client can observe on read-back."""
    spec = obj.get("spec")
    if rt.plural in ("persistentvolumes", "persistentvolumeclaims"):
        status = obj.get("status")
        if not isinstance(status, dict) or not status.get("phase"):
            obj["status"] = {**(status or {}), "phase": "Pending"}
    if rt.plural == "persistentvolumes" and isinstance(spec, dict):
        if isinstance(spec.get("hostPath"), dict):
            spec["hostPath"].setdefault("type", "")
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        spec.setdefault("volumeMode", "Filesystem")
    elif rt.plural == "persistentvolumeclaims" and isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")
    elif rt.plural == "storageclasses":
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")
    elif rt.plural == "secrets":
        obj.setdefault("type", "Opaque")
    elif rt.plural == "events" and rt.group == "":
        # core/v1 Event's non-omitempty fields, as a real server returns them
        obj.setdefault("eventTime", None)
        obj.setdefault("reportingComponent", "")
        obj.setdefault("reportingInstance", "")
    elif rt.plural == "services" and isinstance(spec, dict):
        services.apply_defaults(spec)
    elif rt.plural == "namespaces":
        # the real strategy always sets these, even over an empty spec/status (kubectl's
        # protobuf body carries both, empty)
        if not isinstance(spec, dict) or not spec.get("finalizers"):
            obj["spec"] = {**(spec if isinstance(spec, dict) else {}), "finalizers": ["kubernetes"]}
        status = obj.get("status")
        if not isinstance(status, dict) or not status.get("phase"):
            obj["status"] = {**(status if isinstance(status, dict) else {}), "phase": "Active"}
        labels = obj["metadata"].get("labels")
        name = obj["metadata"].get("name")
        if isinstance(name, str) and name:
            obj["metadata"]["labels"] = {
                **(labels if isinstance(labels, dict) else {}),
                "kubernetes.io/metadata.name": name,
            }


def validate_create(rt: ResourceType, obj: Obj) -> None:
    name = obj["metadata"].get("name", "")
    causes = name_causes(rt, name) + _metadata_causes(obj)
    if rt.plural == "persistentvolumeclaims":
        causes += _claim_causes(obj)
    elif rt.plural == "persistentvolumes":
        causes += _volume_causes(obj)
    elif rt.plural == "storageclasses":
        if not obj.get("provisioner"):
            causes.append(("provisioner", "FieldValueRequired", "Required value"))
        mode = obj.get("volumeBindingMode")
        if mode not in ("Immediate", "WaitForFirstConsumer"):
            causes.append(
                (
                    "volumeBindingMode",
                    "FieldValueNotSupported",
                    f'Unsupported value: "{mode}": supported values: "Immediate", '
                    '"WaitForFirstConsumer"',
                )
            )
    elif rt.plural == "secrets":
        causes += _secret_causes(obj)
    if causes:
        raise invalid(rt, name, causes)

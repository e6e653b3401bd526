"""Bodies of the objects tests create as a user or an admin would: the Heketi key's
Secret, a StorageClass of ours, a claim. One definition for every conftest, so that a
change of shape (a field every claim needs) is made once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from provisioner.config import DEFAULT_PROVISIONER_NAME
from provisioner.gluster.credentials import SECRET_KEY_ENTRY, SECRET_TYPE, heketi_secret_body

__all__ = ["claim_body", "class_body", "secret_body"]

Obj = dict[str, Any]


def secret_body(
    name: str, namespace: str, key: str, *, type_: str = SECRET_TYPE, entry: str = SECRET_KEY_ENTRY
) -> Obj:
    """The Secret holding the Heketi key (``type_``/``entry`` build the wrong ones)."""
    return heketi_secret_body(name, namespace, key, type_=type_, entry=entry)


def class_body(
    name: str,
    resturl: str,
    /,
    *,
    secret: tuple[str, str] | None = None,
    provisioner: str = DEFAULT_PROVISIONER_NAME,
    reclaim: str = "Delete",
    binding_mode: str | None = None,
    **params: str | None,
) -> Obj:
    """A StorageClass for Heketi at ``resturl`` as ``admin``, with the key in ``secret``
    (namespace, name). ``params`` add to or override the parameters (``resturl`` too);
    None drops one."""
    parameters: dict[str, str | None] = {"resturl": resturl, "restuser": "admin"}
    if secret is not None:
        parameters.update(secretNamespace=secret[0], secretName=secret[1])
    parameters.update(params)
    body: Obj = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": provisioner,
        "reclaimPolicy": reclaim,
        "parameters": {k: v for k, v in parameters.items() if v is not None},
    }
    if binding_mode is not None:
        body["volumeBindingMode"] = binding_mode
    return body


def claim_body(
    name: str,
    namespace: str,
    storage_class: str,
    *,
    size: str = "1Gi",
    access_modes: Sequence[str] = ("ReadWriteOnce",),
    **spec: Any,
) -> Obj:
    """A claim for ``size`` of ``storage_class``; ``spec`` adds to its spec."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "accessModes": list(access_modes),
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": size}},
            **spec,
        },
    }

"""The kubeconfig that points clients (and kubectl) at the sandbox."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

NAME = "heketi-sandbox"


def kubeconfig(server: str, token: str | None = None, namespace: str = "default") -> dict[str, Any]:
    user: dict[str, Any] = {"token": token} if token else {}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": NAME, "cluster": {"server": server}}],
        "users": [{"name": NAME, "user": user}],
        "contexts": [
            {"name": NAME, "context": {"cluster": NAME, "user": NAME, "namespace": namespace}}
        ],
        "current-context": NAME,
        "preferences": {},
    }


def write_kubeconfig(server: str, token: str | None, path: str | os.PathLike[str] | None) -> str:
    """Write atomically (readers never see half a file); a temp file when no path is given."""
    text = yaml.safe_dump(kubeconfig(server, token), sort_keys=False)
    if path is None:
        fd, name = tempfile.mkstemp(prefix="heketi-sandbox-", suffix=".kubeconfig")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        return name
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, target)
    return str(target)

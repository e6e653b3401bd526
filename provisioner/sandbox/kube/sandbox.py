"""``KubeSandbox``: an in-memory Kubernetes API server on loopback.

It speaks the REST protocol (discovery, CRUD, list/watch, patches, Status errors) so
that the controller reaches it exactly as it reaches a real cluster, through a
kubeconfig and HTTP, and emulates the control-plane behaviour a storage provisioner
depends on (PV binder, default StorageClass, protection finalizers).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import threading
from collections.abc import Iterable
from typing import Any

from . import bootstrap_rbac, validation
from .control_plane import ControlPlane
from .deprecations import release
from .faults import Faults
from .kubeconfig import write_kubeconfig
from .pv_controller import SELECTED_NODE
from .registry import Registry, copy_obj
from .request_log import RequestLog, RequestRecord
from .resources import by_plural
from .server import Api
from .store import Store, now
from .transport import SandboxHTTPServer

Obj = dict[str, Any]
_INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class KubeSandbox:
    """Start with ``start()`` (or ``with``); point clients at ``kubeconfig_path``.

    ``watch_cache_size`` bounds the per-resource event history: a watch resuming from
    a resourceVersion older than the last ``watch_cache_size`` events of that resource
    gets a 410 Expired ERROR event and must relist. ``bookmark_interval`` is how often
    (seconds) an idle watch that allows bookmarks receives one.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        version: str = "1.25.0",
        token: str | None = None,
        kubeconfig_path: str | os.PathLike[str] | None = None,
        watch_cache_size: int = 1000,
        bookmark_interval: float = 2.0,
    ) -> None:
        self.host = host
        self.port = port
        self.version = version
        self.token = token
        self._requested_kubeconfig = kubeconfig_path
        self.kubeconfig_path: str | None = None
        self.url: str | None = None
        self.store = Store(watch_cache_size=watch_cache_size)
        self.registry = Registry(self.store, release=release(version))
        self.faults = Faults(self.store)
        self._log = RequestLog()
        self.control_plane = ControlPlane(self.registry, version=version)
        self._api = Api(
            store=self.store,
            registry=self.registry,
            faults=self.faults,
            log=self._log,
            version=version,
            token=token,
            bookmark_interval=bookmark_interval,
        )
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        ns_type = by_plural("namespaces")
        for name in _INITIAL_NAMESPACES:
            self.registry.create(ns_type, "", {"metadata": {"name": name}})
        # the bootstrap policy every identity meets (bootstrap_rbac.py)
        for role in bootstrap_rbac.cluster_roles(release(version)):
            self.registry.create(by_plural("clusterroles"), "", role)
        for binding in bootstrap_rbac.cluster_role_bindings(release(version)):
            self.registry.create(by_plural("clusterrolebindings"), "", binding)

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> str:
        if self._server is not None:
            assert self.url is not None
            return self.url
        self._server = SandboxHTTPServer((self.host, self.port), self._api)
        host, port = str(self._server.server_address[0]), self._server.server_address[1]
        self.port = int(port)
        self.url = f"http://{host}:{self.port}"
        self._api.address = f"{host}:{self.port}"
        self.control_plane.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="kube-sandbox-http", daemon=True
        )
        self._thread.start()
        # Last, once serving: should writing it fail, stop() can still shut the server
        # down (socketserver's shutdown() waits forever for a serve_forever never run).
        self.kubeconfig_path = write_kubeconfig(self.url, self.token, self._requested_kubeconfig)
        return self.url

    def stop(self) -> None:
        if self._server is None:
            return
        self._api.stopping.set()
        self.store.drop_watchers()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self.control_plane.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        if self._requested_kubeconfig is None and self.kubeconfig_path:
            with contextlib.suppress(OSError):
                os.unlink(self.kubeconfig_path)

    def __enter__(self) -> KubeSandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- Python-side access (no HTTP; returns private copies) ---------------------

    @property
    def request_log(self) -> list[RequestRecord]:
        return self._log.records()

    def clear_request_log(self) -> None:
        self._log.clear()

    def get_object(self, resource: str, namespace: str | None, name: str) -> Obj | None:
        rt = by_plural(resource)
        obj = self.store.get(rt.storage_key, (namespace or "") if rt.namespaced else "", name)
        return None if obj is None else copy_obj(obj)

    def list_objects(self, resource: str, namespace: str | None = None) -> list[Obj]:
        rt = by_plural(resource)
        _, entries = self.store.snapshot(rt.storage_key, namespace or None)
        return [json.loads(e.raw()) for e in entries]  # the cached JSON doubles as a copy

    def create_object(self, resource: str, body: Obj, namespace: str | None = None) -> Obj:
        """Create through the same rules as a POST (validation, admission)."""
        rt = by_plural(resource)
        ns = namespace or (body.get("metadata") or {}).get("namespace") or ""
        return copy_obj(self.registry.create(rt, ns, copy.deepcopy(body)))

    def preload(self, resource: str, bodies: Iterable[Obj]) -> int:
        """Bulk insert for benchmarks and fixtures; returns the resourceVersion used.

        Objects get uid, creationTimestamp, kind/apiVersion and one shared
        resourceVersion, and are defaulted but not validated nor admitted. No watch
        events are produced: a watch from an older resourceVersion gets 410 and must
        relist (which returns them). Existing objects with the same name are replaced.
        """
        rt = by_plural(resource)
        stamp = now()
        prepared = []
        for body in bodies:
            obj = copy.deepcopy(body)
            meta = obj.setdefault("metadata", {})
            meta.setdefault("uid", os.urandom(16).hex())
            meta.setdefault("creationTimestamp", stamp)
            if rt.namespaced:
                meta.setdefault("namespace", "default")
            obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
            validation.apply_defaults(rt, obj)
            prepared.append(obj)
        return self.store.preload(rt.storage_key, prepared)

    def select_node(self, namespace: str, claim: str, node: str) -> Obj:
        """What the scheduler does for WaitForFirstConsumer: annotate the chosen node."""

        def annotate(obj: Obj) -> None:
            obj["metadata"].setdefault("annotations", {})[SELECTED_NODE] = node

        updated = self.registry.mutate(
            by_plural("persistentvolumeclaims"), namespace, claim, annotate
        )
        if updated is None:
            raise KeyError(f"claim {namespace}/{claim} not found")
        return copy_obj(updated)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """True once the control-plane emulation has caught up with every change."""
        return self.control_plane.wait_idle(timeout)

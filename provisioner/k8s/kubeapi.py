"""The one gateway to the Kubernetes API: raw JSON dicts in and out.

Everything else in the controller asks this module instead of the generated
``kubernetes`` client models.  The models cost a deep conversion per object and
lose fields the client does not know; the provisioner only ever needs a handful of
keys, so it reads and writes the JSON the API server sent.  The official client is
still used for what it is good at: kubeconfig / in-cluster loading, TLS, bearer
tokens and their refresh, connection pooling.

Failures are raised as the exception tree of ``provisioner.k8s.errors``; watch
streams are ``provisioner.k8s.watching.WatchStream``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from provisioner import __version__
from provisioner.k8s.errors import KubeUnavailable, error_from_status
from provisioner.k8s.watching import WatchStream

__all__ = ["RESOURCES", "USER_AGENT", "KubeAPI", "KubeObject", "Resource", "load_api_client"]

KubeObject = dict[str, Any]

USER_AGENT = f"heketi-provisioner/{__version__}"
_WATCH_READ_MARGIN = 10.0
_WATCH_SILENCE_LIMIT = 300.0


@dataclass(frozen=True)
class Resource:
    """Where a resource lives; the table below is the only place that knows."""

    prefix: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None, name: str | None = None) -> str:
        parts = [self.prefix]
        if self.namespaced and namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
        return "/".join(parts)


RESOURCES: dict[str, Resource] = {
    "persistentvolumeclaims": Resource("/api/v1", "persistentvolumeclaims", True),
    "persistentvolumes": Resource("/api/v1", "persistentvolumes", False),
    "secrets": Resource("/api/v1", "secrets", True),
    "endpoints": Resource("/api/v1", "endpoints", True),
    "services": Resource("/api/v1", "services", True),
    "configmaps": Resource("/api/v1", "configmaps", True),
    "events": Resource("/api/v1", "events", True),
    "namespaces": Resource("/api/v1", "namespaces", False),
    "storageclasses": Resource("/apis/storage.k8s.io/v1", "storageclasses", False),
    "leases": Resource("/apis/coordination.k8s.io/v1", "leases", True),
    # kubectl's "resource.group" spelling: the plural alone means core v1 events.
    "events.events.k8s.io": Resource("/apis/events.k8s.io/v1", "events", True),
}

_PATCH_CONTENT_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}


def load_api_client(kubeconfig: str | None, *, pool_size: int = 64) -> k8s_client.ApiClient:
    """An ``ApiClient`` from a kubeconfig file; when None, the pod's service account
    inside a pod, and elsewhere (an operator's shell running ``uninstall`` or
    ``audit``) ``$KUBECONFIG`` or ``~/.kube/config``, as kubectl does.

    The pool is sized for the workers plus one long-lived connection per watch;
    the client's default (5 x CPUs) would make workers wait for a socket.
    """
    configuration = k8s_client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    elif kubeconfig is None:
        k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    configuration.connection_pool_maxsize = pool_size
    # Retries belong to the controller's backoff, not to a hidden urllib3 loop
    # that could resend a POST.
    configuration.retries = False
    return k8s_client.ApiClient(configuration)


class KubeAPI:
    """Thread-safe; one instance is shared by informers, workers and events."""

    def __init__(self, api_client: k8s_client.ApiClient, *, request_timeout: float = 30.0) -> None:
        self.api_client = api_client
        self.request_timeout = request_timeout
        api_client.user_agent = USER_AGENT

    # -- plumbing ---------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, body, post = self.api_client.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api_client.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                post_params=post,
                _request_timeout=timeout or self.request_timeout,
            )
        except ApiException as exc:  # TLS failures surface this way
            raise KubeUnavailable(0, "TransportError", str(exc.reason)) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise KubeUnavailable(0, type(exc).__name__, str(exc)) from exc
        raw: urllib3.BaseHTTPResponse = response.response
        if not 200 <= raw.status <= 299:
            try:
                data = raw.read()
            except urllib3.exceptions.HTTPError:
                data = b""
            finally:
                raw.release_conn()
            raise error_from_status(raw.status, data)
        return raw

    def _json(self, method: str, path: str, **kwargs: Any) -> KubeObject:
        raw = self._send(method, path, **kwargs)
        try:
            data = raw.read()
        except urllib3.exceptions.HTTPError as exc:
            raise KubeUnavailable(0, type(exc).__name__, str(exc)) from exc
        finally:
            raw.release_conn()
        if not data:
            return {}
        result: KubeObject = json.loads(data)
        return result

    @staticmethod
    def _resource(resource: str) -> Resource:
        try:
            return RESOURCES[resource]
        except KeyError:
            raise ValueError(f"unknown resource {resource!r}") from None

    # -- verbs ------------------------------------------------------------

    def get(self, resource: str, name: str, namespace: str | None = None) -> KubeObject:
        return self._json("GET", self._resource(resource).path(namespace, name))

    def list(
        self,
        resource: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
    ) -> KubeObject:
        query: list[tuple[str, Any]] = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        if limit:
            query.append(("limit", limit))
        if continue_token:
            query.append(("continue", continue_token))
        if resource_version is not None:
            query.append(("resourceVersion", resource_version))
        return self._json("GET", self._resource(resource).path(namespace), query=query)

    def create(self, resource: str, body: KubeObject, namespace: str | None = None) -> KubeObject:
        return self._json("POST", self._resource(resource).path(namespace), body=body)

    def replace(self, resource: str, body: KubeObject, namespace: str | None = None) -> KubeObject:
        name = body["metadata"]["name"]
        return self._json("PUT", self._resource(resource).path(namespace, name), body=body)

    def patch(
        self,
        resource: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        subresource: str = "",
    ) -> KubeObject:
        """``patch_type`` is ``merge`` (RFC 7386), ``json`` (RFC 6902) or ``strategic``;
        ``subresource`` e.g. ``status`` (a claim's status is written only there)."""
        try:
            content_type = _PATCH_CONTENT_TYPES[patch_type]
        except KeyError:
            raise ValueError(f"unknown patch type {patch_type!r}") from None
        path = self._resource(resource).path(namespace, name)
        if subresource:
            path = f"{path}/{subresource}"
        return self._json("PATCH", path, body=patch, content_type=content_type)

    def delete(
        self, resource: str, name: str, namespace: str | None = None, *, uid: str | None = None
    ) -> None:
        """With ``uid``, a same-named successor object is never deleted by mistake."""
        body: KubeObject | None = None
        if uid is not None:
            body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}}
        self._json("DELETE", self._resource(resource).path(namespace, name), body=body)

    def watch(
        self,
        resource: str,
        *,
        resource_version: str,
        timeout_seconds: int,
        namespace: str | None = None,
        label_selector: str | None = None,
        allow_bookmarks: bool = True,
    ) -> Iterator[KubeObject]:
        """Yield watch events (``{"type", "object"}``) until the server ends the stream."""
        stream = self.open_watch(
            resource,
            resource_version=resource_version,
            timeout_seconds=timeout_seconds,
            namespace=namespace,
            label_selector=label_selector,
            allow_bookmarks=allow_bookmarks,
        )
        try:
            yield from stream
        finally:
            stream.close()

    def open_watch(
        self,
        resource: str,
        *,
        resource_version: str,
        timeout_seconds: int,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        allow_bookmarks: bool = True,
    ) -> WatchStream:
        """Like ``watch``, but the stream can be closed from another thread.

        The socket read timeout is a little longer than ``timeoutSeconds``, so a
        silent, half-dead connection ends the stream instead of hanging forever.
        """
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", int(timeout_seconds)),
        ]
        if allow_bookmarks:
            query.append(("allowWatchBookmarks", "true"))
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        read_timeout = min(timeout_seconds + _WATCH_READ_MARGIN, _WATCH_SILENCE_LIMIT)
        raw = self._send(
            "GET",
            self._resource(resource).path(namespace),
            query=query,
            timeout=(self.request_timeout, read_timeout),
        )
        return WatchStream(raw)

    def server_version(self) -> str:
        return str(self._json("GET", "/version").get("gitVersion", ""))

"""Request handling: who asks (``access.py``), what is asked (``routing.py``), the
registry operation, and the representation of the answer (JSON object, List, Table,
watch stream).

Framing (keep-alive, chunked watch streams) lives in ``transport.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog

from . import deprecations, discovery, field_validation, openapi, options, reviews
from .access import Access
from .bodies import object_body, patch_check
from .faults import Faults
from .patching import PATCH_TYPES, apply_patch
from .rbac import Attributes, User
from .registry import Registry, copy_obj
from .request_log import RequestLog, RequestRecord
from .resources import ResourceType
from .routing import RequestInfo, flag, parse_resource_path, resolve
from .selectors import compile_filter
from .status import ApiError, bad_request
from .store import Store, WatchExpired, dumps, list_item
from .tables import table, wants_table
from .transport import peer_closed, read_body, read_json, send, stream
from .watch import WatchStream, expired_line

Obj = dict[str, Any]
log = structlog.get_logger(__name__)
_HEALTH = {"/healthz", "/readyz", "/livez"}
_DEFAULT_WATCH_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Request:
    """A resource request, routed and authorized."""

    rt: ResourceType
    info: RequestInfo
    verb: str
    query: dict[str, str]
    multi: dict[str, list[str]]  # every value of each query parameter (dryRun repeats)
    user: User


def deleted_status(rt: ResourceType, obj: Obj) -> Obj:
    """What a DELETE answers for kinds whose registry does not return the object."""
    meta = obj["metadata"]
    details = {"name": meta["name"], **({"group": rt.group} if rt.group else {})}
    details.update(kind=rt.plural, uid=meta.get("uid", ""))
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


class Api:
    """Everything a request needs, shared by all handler threads."""

    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        faults: Faults,
        log: RequestLog,
        version: str,
        token: str | None,
        bookmark_interval: float,
    ) -> None:
        self.store = store
        self.registry = registry
        self.faults = faults
        self.log = log
        self.version = version
        self.release = deprecations.release(version)
        self.access = Access(store, faults, token, self.release)
        self.bookmark_interval = bookmark_interval
        self.stopping = threading.Event()
        self.address = ""

    # -- entry point -----------------------------------------------------------

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urlsplit(req.path)
        multi = parse_qs(url.query, keep_blank_values=True)
        query = {k: v[-1] for k, v in multi.items()}
        agent = req.headers.get("User-Agent", "")
        info = parse_resource_path(url.path)
        record = RequestRecord(req.command.lower(), "", "", "", "", agent, 0, "", url.path)
        # Read the body before anything can fail: unread bytes would corrupt the next
        # request on this keep-alive connection.
        body = read_body(req)
        headers: dict[str, str] = {}
        content_type = "application/json"
        try:
            if self.faults.latency > 0:
                time.sleep(self.faults.latency)  # injected latency, not synchronisation
            user = self.access.user(req.headers)
            if info is None:
                path = Attributes(user, req.command.lower(), False, path=url.path)
                self.access.check(path)
                payload, content_type = self._non_resource(url.path)
                code = 200
            else:
                rt, verb = resolve(req.command, info, query)
                record = RequestRecord(
                    verb,
                    info.resource,
                    info.subresource,
                    info.namespace,
                    info.name,
                    agent,
                    0,
                    info.group,
                    url.path,
                )
                self.access.check(
                    Attributes(
                        user,
                        verb,
                        group=rt.group,
                        resource=info.resource,
                        subresource=info.subresource,
                        namespace=info.namespace,
                        name=info.name,
                    )
                )
                if verb == "watch":
                    as_table = wants_table(req.headers.get("Accept", ""))
                    lines = self._watch_lines(rt, info, query, as_table)
                    if isinstance(lines, WatchStream):
                        lines.client_gone = partial(peer_closed, req.connection)
                    self.log.add(record._replace(status=200))
                    stream(req, lines)
                    return
                failure = self.faults.take_write_failure(verb, info.resource, info.subresource)
                if failure is not None:
                    raise failure
                hold = self.faults.take_write_hold(verb, info.resource, info.subresource)
                if hold is not None and not hold.after_effect and not hold.block(self.stopping):
                    raise ApiError(503, "held request abandoned (injected)")
                if verb in ("get", "list") and wants_table(req.headers.get("Accept", "")):
                    code, payload = 200, self._table(rt, info, verb, query)
                else:
                    request = Request(rt, info, verb, query, multi, user)
                    code, payload, headers = self._dispatch(body, request)
                if hold is not None and hold.after_effect:
                    hold.block(self.stopping)
        except ApiError as exc:
            code, payload, headers = exc.code, dumps(exc.status()), exc.headers
        except Exception as exc:  # a sandbox bug must still answer like a server would
            log.exception("kube_sandbox.request_failed", method=req.command, path=req.path)
            failure = ApiError(500, f"sandbox internal error: {type(exc).__name__}: {exc}")
            code, payload = 500, dumps(failure.status())
        # Logged before the response goes out, so a client that has its answer can
        # already see its request in the log.
        self.log.add(record._replace(status=code))
        send(req, code, payload, headers, content_type)

    def _written(
        self, rt: ResourceType, obj: Obj, headers: dict[str, str], sub: str
    ) -> tuple[bytes, dict[str, str]]:
        """The answer to a write: the object, and the registry's deprecation warnings
        after any field-validation ones."""
        found = [] if sub else deprecations.warnings(rt.plural, obj, self.release)
        extra = field_validation.warning_header(found).get("Warning")
        if extra:
            joined = ", ".join(h for h in (headers.get("Warning"), extra) if h)
            headers = {**headers, "Warning": joined}
        return self._render(rt, obj), headers

    def _non_resource(self, path: str) -> tuple[bytes, str]:
        path = path.rstrip("/") or "/"
        body: Obj | None
        if path in _HEALTH or path.startswith(tuple(p + "/" for p in _HEALTH)):
            return b"ok", "text/plain; charset=utf-8"
        if path.startswith("/openapi/v3"):
            doc = openapi.document(path, self.version)
            if doc is None:
                raise ApiError(404, "the server could not find the requested resource")
            return doc, "application/json"
        if path == "/version":
            body = discovery.version_info(self.version)
        elif path == "/api":
            body = discovery.core_versions(self.address)
        elif path == "/apis":
            body = discovery.group_list()
        elif path == "/api/v1":
            body = discovery.resource_list("", "v1")
        elif path.startswith("/apis/") and path.count("/") == 3:
            _, _, group, version = path.split("/")
            body = discovery.resource_list(group, version)
        elif path.startswith("/apis/") and path.count("/") == 2:
            body = discovery.group(path.split("/")[2])
        else:
            body = None
        if body is None:
            raise ApiError(404, "the server could not find the requested resource")
        return dumps(body), "application/json"

    # -- operations ------------------------------------------------------------

    def _dispatch(self, body: tuple[bytes, str], r: Request) -> tuple[int, bytes, dict[str, str]]:
        reg, rt = self.registry, r.rt
        ns, name, sub = r.info.namespace, r.info.name, r.info.subresource
        if r.verb == "get":
            return 200, self._render(rt, reg.get(rt, ns, name)), {}
        if r.verb == "list":
            return 200, self._list(rt, r.info, r.query), {}
        if r.verb == "create" and rt.review:
            obj, headers = object_body(rt, body, r.query, r.verb)
            reg.ingest(rt, copy_obj(obj))  # the kind/apiVersion checks of any create
            return 201, dumps(reviews.answer(rt, obj, r.user, self.access, self.release)), headers
        if r.verb == "create":
            dry = options.dry_run(r.multi, "CreateOptions", self.release)
            obj, headers = object_body(rt, body, r.query, r.verb)
            return 201, *self._written(rt, reg.create(rt, ns, obj, dry_run=dry), headers, sub)
        if r.verb == "update":
            dry = options.dry_run(r.multi, "UpdateOptions", self.release)
            existed = self.store.get(rt.storage_key, ns, name) is not None
            new, headers = object_body(rt, body, r.query, r.verb)
            obj = reg.update(rt, ns, name, new, sub, dry_run=dry)
            return (200 if existed else 201), *self._written(rt, obj, headers, sub)
        if r.verb == "patch":
            content_type = body[1]
            media = content_type.split(";")[0].strip().lower()
            if media not in PATCH_TYPES:
                apply_patch(media, {}, None)  # raises the 415 the real server gives
            dry = options.dry_run(r.multi, "PatchOptions", self.release)
            options.patch_syntax(body[0], media, self.release)
            patch, headers = read_json(body, parse=field_validation.parse), {}
            mode = field_validation.mode(r.query, r.verb)
            check = patch_check(rt, media, patch, mode, headers)
            obj = reg.patch(rt, ns, name, content_type, patch, sub, check=check, dry_run=dry)
            return 200, *self._written(rt, obj, headers, sub)
        opts = options.delete_options(body, r.multi, self.release)
        dry = bool(opts.get("dryRun"))
        if r.verb == "delete":
            done = reg.delete(rt, ns, name, opts, dry_run=dry)
            if done.gone and not rt.returns_deleted:
                return 200, dumps(deleted_status(rt, done.obj)), {}
            # 202 only when asked to cascade the old way and the object stays for now
            code = 202 if not done.gone and opts.get("orphanDependents") is False else 200
            return code, self._render(rt, done.obj), {}
        match = compile_filter(rt, r.query.get("labelSelector"), r.query.get("fieldSelector"))
        rv, listed = reg.delete_collection(rt, ns or None, match, opts, dry_run=dry)
        items = b",".join(dumps(list_item(reg.present(rt, o))) for o in listed)
        return 200, self._list_body(rt, rv, items, None, 0), {}

    def _render(self, rt: ResourceType, obj: Obj) -> bytes:
        return dumps(self.registry.present(rt, obj))

    def _list(self, rt: ResourceType, info: RequestInfo, query: dict[str, str]) -> bytes:
        options.list_options(query, watch=False, release=self.release)
        match = compile_filter(rt, query.get("labelSelector"), query.get("fieldSelector"))
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise bad_request(f"invalid limit: {query.get('limit')!r}") from None
        rv, entries, token, remaining = self.registry.list_entries(
            rt, info.namespace or None, match, limit=limit, continue_token=query.get("continue")
        )
        if rt.storage:
            items = b",".join(dumps(list_item(self.registry.present(rt, e.obj))) for e in entries)
        else:
            items = b",".join(e.item_raw() for e in entries)
        return self._list_body(rt, rv, items, token, remaining)

    @staticmethod
    def _list_body(
        rt: ResourceType, rv: int, items: bytes, token: str | None, remaining: int
    ) -> bytes:
        meta: Obj = {"resourceVersion": str(rv)}
        if token:
            meta["continue"] = token
            meta["remainingItemCount"] = remaining
        head = {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta}
        return dumps(head)[:-1] + b',"items":[' + items + b"]}"

    def _table(
        self, rt: ResourceType, info: RequestInfo, verb: str, query: dict[str, str]
    ) -> bytes:
        include = query.get("includeObject") or "Metadata"
        if verb == "list":
            options.list_options(query, watch=False, release=self.release)
        if verb == "get":
            obj = self.registry.present(rt, self.registry.get(rt, info.namespace, info.name))
            return dumps(table(rt, [obj], obj["metadata"]["resourceVersion"], include))
        match = compile_filter(rt, query.get("labelSelector"), query.get("fieldSelector"))
        limit = int(query.get("limit") or 0) if (query.get("limit") or "0").isdigit() else 0
        rv, entries, token, remaining = self.registry.list_entries(
            rt, info.namespace or None, match, limit=limit, continue_token=query.get("continue")
        )
        objs = [self.registry.present(rt, e.obj) for e in entries]
        body = table(rt, objs, str(rv), include)
        if token:
            body["metadata"].update({"continue": token, "remainingItemCount": remaining})
        return dumps(body)

    def _watch_lines(
        self, rt: ResourceType, info: RequestInfo, query: dict[str, str], as_table: bool = False
    ) -> Iterable[bytes]:
        fields = query.get("fieldSelector")
        if info.name:
            fields = ",".join(f for f in (fields, f"metadata.name={info.name}") if f)
        match = compile_filter(rt, query.get("labelSelector"), fields)
        initial = options.list_options(query, watch=True, release=self.release)
        # a watch list starts from the current state, whatever resourceVersion it names
        since = None if initial else (query.get("resourceVersion") or None)
        if since is not None and not since.isdigit():
            raise bad_request(f"invalid resource version: {since!r}")
        try:
            timeout = float(query.get("timeoutSeconds") or _DEFAULT_WATCH_TIMEOUT)
        except ValueError:
            raise bad_request("invalid timeoutSeconds") from None
        namespace = info.namespace or None
        lines: Iterable[bytes]
        if self.faults.take_watch_expiry(info.resource):
            lines = [expired_line(f"too old resource version: {since or 0} (injected)")]
        else:
            try:
                watcher = self.store.watch(rt.storage_key, namespace, since)
            except WatchExpired as exc:
                lines = [expired_line(str(exc))]
            else:
                lines = WatchStream(
                    self.store,
                    rt,
                    watcher,
                    match,
                    start_rv=int(since) if since and since != "0" else self.store.resource_version,
                    timeout=timeout,
                    bookmarks=flag(query.get("allowWatchBookmarks")),
                    bookmark_interval=self.bookmark_interval,
                    stopping=self.stopping,
                    table_include=(query.get("includeObject") or "Metadata") if as_table else None,
                    initial_events_end=initial and flag(query.get("allowWatchBookmarks")),
                )
        return lines

"""The audit itself: compare what Heketi holds with what Kubernetes says.

Crashes at the wrong moment, hand edits and restores from backup can leave the two
sides disagreeing, and neither side notices on its own: a leaked Heketi volume costs
disk forever, a PV whose volume is gone fails only when a pod mounts it. The audit
reads both sides (it never writes) and lists each disagreement, for an operator to
act on.

What is compared
----------------
* PVs of ours: ``pv.kubernetes.io/provisioned-by`` equal to the provisioner name (so
  with ``--provisioner-name kubernetes.io/glusterfs`` the in-tree PVs are included).
* Heketi volumes of ours: named from a claim uid (``pvc-<uid>`` or
  ``<prefix>_<namespace>_<claim>_<uid>``), or named by a PV of ours. A volume that is
  neither is someone else's and is not judged.
* Which Heketi servers: every ``resturl`` on our PVs and StorageClasses, plus
  ``--heketi-url`` for servers no PV points at yet. Credentials come from where the
  provisioner itself gets them (the Secret a PV or class names, ``restuserkey``), plus
  the command's ``--heketi-key-file`` / ``HEKETI_PROVISIONER_AUDIT_KEY``; each is tried until one is
  accepted. The key is never printed: only ``HeketiTarget`` (whose repr hides it)
  and scrubbed messages leave this module.

Heketi volume ids are random, so a reference by id is matched on any server; that
keeps a server reached through two URLs from producing false orphans.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from heketi_client import HeketiClient, VolumeInfo
from heketi_client.errors import HeketiError, NotFound, Unauthorized
from heketi_client.retries import RetryPolicy
from provisioner.audit.report import (
    AuditReport,
    Duplicate,
    DuplicateVolume,
    GidCollision,
    MissingEndpoints,
    MissingVolume,
    Orphan,
    ServerSummary,
)
from provisioner.controller.contract import ProvisionError
from provisioner.controller.keys import ANN_PROVISIONED_BY
from provisioner.gluster.annotations import ANN_CLONE_OF
from provisioner.gluster.credentials import read_secret_key
from provisioner.gluster.failures import scrub
from provisioner.gluster.objects import DeleteInfo, delete_info
from provisioner.gluster.parameter_values import ParameterError
from provisioner.gluster.parameters import parse_class_parameters
from provisioner.gluster.pool import HeketiPool, HeketiTarget, normalise_url
from provisioner.k8s.kubeapi import KubeAPI, KubeObject

__all__ = ["claim_uid_of_volume", "run_audit"]

_PAGE = 500
_GET_WORKERS = 4
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Prefix, namespace and claim name cannot hold "_" (the prefix is refused with one;
# the others are DNS names), so the uid is whatever follows the third "_".
_OUR_NAME = re.compile(rf"(?:pvc-|[^_]+_[^_]+_[^_]+_)({_UUID})", re.IGNORECASE)


def claim_uid_of_volume(name: str) -> str | None:
    """The claim uid a Heketi volume name was derived from, if it is one of ours."""
    match = _OUR_NAME.fullmatch(name)
    return match.group(1).lower() if match else None


@dataclass
class _Server:
    url: str
    candidates: list[tuple[HeketiTarget, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why a credential source was unusable
    volumes: dict[str, VolumeInfo] | None = None
    error: str | None = None

    def offer(self, target: HeketiTarget, source: str) -> None:
        if all(target != known for known, _ in self.candidates):
            self.candidates.append((target, source))


class _Audit:
    """One run: gathers both sides, then classifies. Not reused."""

    def __init__(
        self,
        kube: KubeAPI,
        provisioner_name: str,
        pool: HeketiPool,
        extra_targets: Sequence[HeketiTarget],
    ) -> None:
        self.kube = kube
        self.name = provisioner_name
        self.pool = pool
        self.extra = extra_targets
        self.servers: dict[str, _Server] = {}
        self.keys: set[str] = {t.key for t in extra_targets if t.key}
        self.errors: list[str] = []

    # -- Kubernetes side -------------------------------------------------------

    def list_all(self, resource: str) -> Iterator[KubeObject]:
        token: str | None = None
        while True:
            page = self.kube.list(resource, limit=_PAGE, continue_token=token)
            yield from page.get("items") or ()
            token = (page.get("metadata") or {}).get("continue") or None
            if not token:
                return

    def server(self, url: str) -> _Server:
        url = normalise_url(url)
        return self.servers.setdefault(url, _Server(url))

    def key_from_secret(self, server: _Server, namespace: str, name: str, named_by: str) -> str:
        try:
            key = read_secret_key(self.kube, namespace, name, named_by=named_by)
        except ProvisionError as err:
            server.notes.append(err.message)
            return ""
        self.keys.add(key)
        return key

    def offer_class(self, storage_class: KubeObject) -> None:
        class_name = storage_class["metadata"]["name"]
        try:
            params = parse_class_parameters(storage_class.get("parameters") or {})
        except ParameterError:
            return  # judged only if a PV needs it (see pv_server)
        server = self.server(params.rest_url)
        key = params.rest_user_key
        if params.secret_name and params.secret_namespace:
            named_by = f"StorageClass {class_name}"
            key = self.key_from_secret(
                server, params.secret_namespace, params.secret_name, named_by
            )
            if not key:
                return
        if key:
            self.keys.add(key)
        server.offer(
            HeketiTarget(params.rest_url, params.rest_user, key), f"StorageClass {class_name}"
        )

    def pv_server(
        self, pv: KubeObject, info: DeleteInfo, classes: dict[str, KubeObject]
    ) -> str | None:
        name = pv["metadata"]["name"]
        if info.rest_url:
            server = self.server(info.rest_url)
            key = ""
            if info.secret_name and info.secret_namespace:
                key = self.key_from_secret(
                    server, info.secret_namespace, info.secret_name, f"PV {name}"
                )
                if not key:
                    return server.url
            if key or not info.rest_user:
                server.offer(HeketiTarget(server.url, info.rest_user or "", key), f"PV {name}")
            return server.url
        storage_class = classes.get(info.class_name or "")
        try:
            if storage_class is None:
                raise ParameterError("storageClassName", "StorageClass not found")
            url = parse_class_parameters(storage_class.get("parameters") or {}).rest_url
        except ParameterError as err:
            self.errors.append(
                f"PV {name}: cannot tell which Heketi holds its volume (no resturl "
                f"annotation; StorageClass {info.class_name or '(none)'}: {err})"
            )
            return None
        return self.server(url).url

    # -- Heketi side -----------------------------------------------------------

    def fetch(self, server: _Server) -> None:
        if not server.candidates:
            why = "; ".join(server.notes) or "no credentials known"
            server.error = f"no usable credentials ({why}); pass --heketi-key-file"
            return
        refused: list[str] = []
        for target, source in server.candidates:
            client = self.pool.client(target)
            try:
                ids = client.list_volumes()
            except Unauthorized as err:
                refused.append(f"{source}: 401 {err.message}")
                continue
            except HeketiError as err:
                server.error = f"unreachable: {err}"
                return
            try:
                with ThreadPoolExecutor(_GET_WORKERS) as executor:
                    found = list(executor.map(partial(_get_or_none, client), ids))
            except HeketiError as err:
                server.error = f"reading volumes failed: {err}"
                return
            server.volumes = {v.id: v for v in found if v is not None}
            return
        server.error = "credentials refused (" + "; ".join(refused + server.notes) + ")"

    def scrubbed(self, text: str) -> str:
        for key in self.keys:
            text = scrub(text, key)
        return text

    # -- the run ---------------------------------------------------------------

    def run(self) -> AuditReport:
        for target in self.extra:
            self.server(target.url).offer(target, "--heketi-url")
        classes = {sc["metadata"]["name"]: sc for sc in self.list_all("storageclasses")}
        for storage_class in classes.values():
            if storage_class.get("provisioner") == self.name:
                self.offer_class(storage_class)
        pvs = sorted(
            (pv for pv in self.list_all("persistentvolumes") if _provisioned_by(pv) == self.name),
            key=lambda pv: pv["metadata"]["name"],
        )
        infos = {pv["metadata"]["name"]: delete_info(pv) for pv in pvs}
        pv_urls = {
            n: self.pv_server(pv, infos[n], classes) for n, pv in zip(infos, pvs, strict=True)
        }
        claims = {
            c["metadata"]["uid"]: _claim_text(c) for c in self.list_all("persistentvolumeclaims")
        }
        endpoints = _names(self.list_all("endpoints"))
        services = _names(self.list_all("services"))
        for server in self.servers.values():
            self.fetch(server)
            if server.error:
                server.error = self.scrubbed(server.error)
                self.errors.append(f"Heketi at {server.url}: {server.error}")
        return self.classify(pvs, infos, pv_urls, claims, endpoints, services)

    def classify(
        self,
        pvs: list[KubeObject],
        infos: dict[str, DeleteInfo],
        pv_urls: dict[str, str | None],
        claims: dict[str, str],
        endpoints: set[tuple[str, str]],
        services: set[tuple[str, str]],
    ) -> AuditReport:
        referenced_ids = {i.volume_id for i in infos.values() if i.volume_id}
        referenced_names = {i.volume_name for i in infos.values() if i.volume_name}
        pv_by_claim = {i.claim_uid: n for n, i in infos.items() if i.claim_uid}

        orphans: list[Orphan] = []
        by_uid: dict[str, dict[str, DuplicateVolume]] = defaultdict(dict)
        ours_total = 0
        summaries = []
        for server in self.servers.values():
            ours = 0
            for volume in sorted((server.volumes or {}).values(), key=lambda v: v.name):
                uid = claim_uid_of_volume(volume.name)
                referenced = volume.id in referenced_ids or volume.name in referenced_names
                ours += bool(uid or referenced)
                if uid is None:
                    continue
                by_uid[uid].setdefault(
                    volume.id, DuplicateVolume(server.url, volume.id, volume.name)
                )
                if not referenced:
                    orphans.append(Orphan(server.url, volume.id, volume.name, uid, claims.get(uid)))
            ours_total += ours
            volumes = len(server.volumes or {})
            summaries.append(ServerSummary(server.url, volumes, ours, server.error))

        names_on = {
            s.url: {v.name for v in s.volumes.values()}
            for s in self.servers.values()
            if s.volumes is not None
        }
        missing: list[MissingVolume] = []
        no_endpoints: list[MissingEndpoints] = []
        no_services: list[MissingEndpoints] = []
        by_gid: dict[tuple[str, int], list[str]] = defaultdict(list)
        for pv in pvs:
            name = pv["metadata"]["name"]
            info = infos[name]
            holder = self.servers.get(pv_urls[name] or "")
            if holder is not None and holder.volumes is not None:
                present = (
                    info.volume_id in holder.volumes
                    if info.volume_id
                    else info.volume_name in names_on[holder.url]
                )
                if not present:
                    claim = claims.get(info.claim_uid or "")
                    missing.append(
                        MissingVolume(name, holder.url, info.volume_id, info.volume_name, claim)
                    )
            if info.endpoints_name and info.endpoints_namespace:
                key = (info.endpoints_namespace, info.endpoints_name)
                finding = MissingEndpoints(name, *key)
                if key not in endpoints:
                    no_endpoints.append(finding)
                if key not in services:
                    no_services.append(finding)
            if info.gid is not None:
                by_gid[(info.class_name or "", info.gid)].append(name)

        duplicates = [
            Duplicate(uid, tuple(vols.values()), pv_by_claim.get(uid))
            for uid, vols in sorted(by_uid.items())
            if len(vols) > 1
        ]
        # A Heketi clone keeps its source's GID (its PV says clone-of): one GID per
        # family of clones is expected; two PVs that are not clones sharing one is not.
        clones = {
            pv["metadata"]["name"]
            for pv in pvs
            if ANN_CLONE_OF in (pv["metadata"].get("annotations") or {})
        }
        collisions = [
            GidCollision(class_name, gid, tuple(sorted(names)))
            for (class_name, gid), names in sorted(by_gid.items())
            if len([n for n in names if n not in clones]) > 1
        ]
        return AuditReport(
            provisioner=self.name,
            servers=tuple(summaries),
            heketi_volumes=ours_total,
            pvs=len(pvs),
            orphans=tuple(orphans),
            missing_volumes=tuple(missing),
            duplicates=tuple(duplicates),
            missing_endpoints=tuple(no_endpoints),
            missing_services=tuple(no_services),
            gid_collisions=tuple(collisions),
            errors=tuple(self.scrubbed(e) for e in self.errors),
        )


def _get_or_none(client: HeketiClient, volume_id: str) -> VolumeInfo | None:
    try:
        return client.get_volume(volume_id)
    except NotFound:
        return None  # deleted between the list and the GET


def _provisioned_by(pv: KubeObject) -> str | None:
    return ((pv.get("metadata") or {}).get("annotations") or {}).get(ANN_PROVISIONED_BY)


def _claim_text(claim: KubeObject) -> str:
    meta = claim["metadata"]
    phase = (claim.get("status") or {}).get("phase") or "Pending"
    return f"{meta['namespace']}/{meta['name']} ({phase})"


def _names(objects: Iterable[KubeObject]) -> set[tuple[str, str]]:
    return {(o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in objects}


def run_audit(
    kube: KubeAPI,
    *,
    provisioner_name: str,
    extra_targets: Sequence[HeketiTarget] = (),
    pool: HeketiPool | None = None,
) -> AuditReport:
    """Read PVs, StorageClasses, claims, Endpoints, Services and Heketi; never write.

    Raises ``KubeAPIError`` if the Kubernetes side cannot be read; Heketi servers that
    cannot be read are reported in ``AuditReport.errors`` instead, with the rest.
    """
    pool = pool or HeketiPool(timeout=(5.0, 30.0), retry=RetryPolicy(attempts=2, backoff=0.5))
    return _Audit(kube, provisioner_name, pool, extra_targets).run()

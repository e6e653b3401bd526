"""Deleting (and repairing) what provision made, from the PV alone where possible.

Our PVs carry the Heketi URL, issuer and Secret reference as annotations, so delete
works after the StorageClass is gone. PVs written by the in-tree provisioner carry
only the volume id (and gid); for those the StorageClass is the only place that says
which Heketi to ask, and if it is gone too the error says exactly that.

Order matters for the invariants: the GID goes back to the pool only after Heketi
confirmed the volume gone (a 204, a 404, or a GET answering 404 after an uncertain
delete), and only once per volume (``Ledger.first_release``), since the controller
may call ``delete`` again for a PV whose finalizer removal failed, by which time the
GID may belong to a new claim.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from heketi_client.errors import HeketiError, NotFound, OutcomeUnknown
from provisioner.controller.contract import Outcome, ProvisionError
from provisioner.gluster.annotations import ANN_HEKETI_VOLUME_ID
from provisioner.gluster.credentials import key_for_delete
from provisioner.gluster.endpoints import delete_endpoints, ensure_endpoints, missing_endpoints
from provisioner.gluster.failures import delete_failure, refused_credentials
from provisioner.gluster.intent import IntentStore
from provisioner.gluster.ledger import Ledger
from provisioner.gluster.objects import DeleteInfo, delete_info
from provisioner.gluster.parameter_values import ParameterError
from provisioner.gluster.parameters import DeleteCredentials, delete_credentials
from provisioner.gluster.pool import HeketiPool, HeketiTarget, normalise_url
from provisioner.gluster.secret_cache import SecretKeys
from provisioner.k8s.errors import KubeAPIError
from provisioner.k8s.kubeapi import KubeAPI

__all__ = ["VolumeDeleter"]

ClassLookup = Callable[[str], "dict[str, Any] | None"]


class VolumeDeleter:
    """The delete and repair halves of ``GlusterProvisioner``."""

    def __init__(
        self,
        *,
        kube: KubeAPI,
        pool: HeketiPool,
        records: IntentStore,
        ledger: Ledger,
        class_lookup: ClassLookup,
        secrets: SecretKeys | None = None,
    ) -> None:
        """``secrets``: the cache of keys read from Secrets (None: read every time)."""
        self.kube = kube
        self.pool = pool
        self.records = records
        self.ledger = ledger
        self.class_lookup = class_lookup
        self.secrets = secrets

    def _class_credentials(self, class_name: str) -> DeleteCredentials | None:
        """The class's server and credentials (read leniently), if the class exists;
        a class whose ``resturl`` is unusable raises."""
        storage_class = self.class_lookup(class_name) if class_name else None
        if storage_class is None:
            return None
        try:
            return delete_credentials(storage_class.get("parameters") or {})
        except ParameterError as err:
            raise ProvisionError(
                f"cannot use StorageClass {class_name} to find its Heketi server: {err}"
            ) from None

    def target_for(self, pv: dict[str, Any], info: DeleteInfo) -> HeketiTarget:
        """The Heketi server and credentials of a PV (delete, repair, expand, clone)."""
        return self._target_and_secret(pv, info)[0]

    def _target_and_secret(
        self, pv: dict[str, Any], info: DeleteInfo
    ) -> tuple[HeketiTarget, tuple[str | None, str | None]]:
        """The target, and the Secret (namespace, name) its key came from."""
        name = pv["metadata"]["name"]
        url, user = info.rest_url, info.rest_user or ""
        secret_ns, secret_name, fallback = info.secret_namespace, info.secret_name, ""
        named_by = f"PV {name}"
        class_name = info.class_name or ""
        if not url:
            found = self._class_credentials(class_name)
            if found is None:
                raise ProvisionError(
                    f"PV {name} does not say which Heketi server holds its volume (it was "
                    f"provisioned in-tree) and its StorageClass {class_name or '(none)'} "
                    "no longer exists; re-create the StorageClass so the volume can be deleted"
                )
            url, user = found.rest_url, found.rest_user
            secret_ns, secret_name = found.secret_namespace, found.secret_name
            fallback = found.rest_user_key
            named_by = f"StorageClass {class_name} (for PV {name})"
        elif user and not secret_name:
            # A class authenticating with the deprecated restuserkey: the PV (rightly)
            # does not carry the key, so take it from the class, as in-tree did, but
            # only while the class still names this PV's server.
            found = self._class_credentials(class_name)
            if found is not None and normalise_url(found.rest_url) == normalise_url(url):
                fallback = found.rest_user_key
        key = key_for_delete(
            self.kube,
            self.pool,
            url=url,
            user=user,
            secret_namespace=secret_ns,
            secret_name=secret_name,
            fallback_key=fallback,
            named_by=named_by,
            secrets=self.secrets,
        )
        return HeketiTarget(url, user, key), (secret_ns, secret_name)

    def delete(self, pv: dict[str, Any]) -> None:
        info = delete_info(pv)
        name = pv["metadata"]["name"]
        if info.volume_id is None:
            raise ProvisionError(
                f"PV {name} names no Heketi volume (no {ANN_HEKETI_VOLUME_ID} annotation and "
                "no vol_<id> path); delete the Heketi volume by hand and remove the finalizer",
                outcome=Outcome.WAIT_FOR_CHANGE,
            )
        target, (secret_ns, secret_name) = self._target_and_secret(pv, info)
        try:
            self.delete_volume(target, info.volume_id)
        except ProvisionError as err:
            # A cached key Heketi refused: read the Secret again at once, and try
            # once more if it holds another key now.
            if (
                self.secrets is None
                or not refused_credentials(err)
                or not self.secrets.invalidate(secret_ns, secret_name)
            ):
                raise
            fresh = self.target_for(pv, info)
            if fresh.key == target.key:
                raise
            self.delete_volume(fresh, info.volume_id)
        if info.endpoints_name and info.endpoints_namespace:
            try:
                delete_endpoints(
                    self.kube,
                    namespace=info.endpoints_namespace,
                    name=info.endpoints_name,
                    claim_uid=info.claim_uid or "",
                )
            except KubeAPIError as err:
                raise ProvisionError(
                    f"Heketi volume {info.volume_id} is gone, but deleting Endpoints/Service "
                    f"{info.endpoints_namespace}/{info.endpoints_name} failed: {err}"
                ) from None
        try:
            self.records.discard(info.claim_uid or "")
        except KubeAPIError as err:
            raise ProvisionError(
                f"Heketi volume {info.volume_id} is gone, but deleting its intent record "
                f"failed: {err}"
            ) from None
        first = self.ledger.first_release(info.volume_id)
        self.ledger.volume_gone(
            target.url,
            info.volume_id,
            info.class_name or "",
            info.gid if first else None,
            info.claim_uid or "",
        )

    def delete_volume(self, target: HeketiTarget, volume_id: str) -> None:
        """Delete in Heketi; 404 is success, an uncertain outcome is settled by a GET."""
        pool = self.pool
        client = pool.client(target)

        def failure(err: HeketiError) -> ProvisionError:
            return delete_failure(
                err, url=target.url, user=target.user, key=target.key, volume_id=volume_id
            )

        try:
            with pool.slot(target.url):
                client.delete_volume(volume_id)
            return
        except NotFound:
            return
        except OutcomeUnknown as err:
            unknown = err
        except HeketiError as err:
            raise failure(err) from None
        # The delete may or may not have happened: ask.
        try:
            client.get_volume(volume_id)
        except NotFound:
            return
        except HeketiError as err:
            raise failure(err) from None
        raise failure(unknown)

    def repair(self, pv: dict[str, Any]) -> bool:
        """Re-create a missing Endpoints or Service of a bound PV; True if it did."""
        info = delete_info(pv)
        if not info.volume_id or not info.endpoints_name or not info.endpoints_namespace:
            return False
        kube = self.kube
        try:
            missing = missing_endpoints(
                kube, namespace=info.endpoints_namespace, name=info.endpoints_name
            )
        except KubeAPIError as err:
            raise ProvisionError(f"cannot check Endpoints/Service of PV: {err}") from None
        if not missing:
            return False
        target = self.target_for(pv, info)
        try:
            volume = self.pool.client(target).get_volume(info.volume_id)
        except HeketiError as err:
            raise delete_failure(
                err,
                url=target.url,
                user=target.user,
                key=target.key,
                volume_id=info.volume_id,
                doing=f"reading volume {info.volume_id} to repair its Endpoints",
            ) from None
        claim_ref = (pv.get("spec") or {}).get("claimRef") or {}
        try:
            ensure_endpoints(
                kube,
                namespace=info.endpoints_namespace,
                name=info.endpoints_name,
                claim_name=claim_ref.get("name", ""),
                claim_uid=str(claim_ref.get("uid") or ""),
                hosts=volume.mount_hosts,
            )
        except KubeAPIError as err:
            raise ProvisionError(
                f"re-creating {', '.join(missing)} {info.endpoints_namespace}/"
                f"{info.endpoints_name} failed: {err}"
            ) from None
        return True

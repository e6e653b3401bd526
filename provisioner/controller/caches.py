"""The controller's informers: claims, PVs, StorageClasses, and what a backend keeps
beside its PVs.

Built before the backend, so that the backend can look StorageClasses up in them;
the watched kinds are added when the controller learns them from the backend
(``Repairer.watched_kinds``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from provisioner.config import Settings
from provisioner.controller import cache_fields
from provisioner.controller.contract import WatchedKind
from provisioner.k8s.informer import Informer, Transform, strip_managed_fields
from provisioner.k8s.kubeapi import KubeAPI, KubeObject
from provisioner.k8s.slimming import Fields, slim

__all__ = ["Caches", "WatchedObjects"]

Obj = dict[str, Any]


def slimmer(fields: Fields) -> Transform:
    """The informer transform keeping what ``fields`` declares (``cache_fields``)."""

    def transform(obj: KubeObject) -> KubeObject:
        result: KubeObject = slim(strip_managed_fields(obj), fields)
        return result

    return transform


class WatchedObjects:
    """The caches of the backend's watched kinds, asked only "is it there"."""

    def __init__(self, informers: Sequence[Informer] = ()) -> None:
        self.informers = list(informers)

    def synced(self) -> bool:
        return all(informer.has_synced() for informer in self.informers)

    def all_present(self, key: str) -> bool:
        """Every watched kind has an object ``key`` (``namespace/name``)."""
        return all(informer.get(key) is not None for informer in self.informers)


class Caches:
    def __init__(self, kube: KubeAPI, settings: Settings) -> None:
        self._kube = kube
        self._settings = settings
        self.claims = self._informer("persistentvolumeclaims", None, slimmer(cache_fields.CLAIM))
        self.pvs = self._informer("persistentvolumes", None, slimmer(cache_fields.PV))
        self.classes = self._informer("storageclasses", None, slimmer(cache_fields.STORAGE_CLASS))
        self.watched = WatchedObjects()

    def _informer(
        self, resource: str, selector: str | None, transform: Transform, *, keys_only: bool = False
    ) -> Informer:
        return Informer(
            self._kube,
            resource,
            label_selector=selector,
            watch_timeout=self._settings.watch_timeout,
            retry_cap=min(30.0, self._settings.backoff_cap),
            transform=transform,
            keys_only=keys_only,
        )

    def watch(self, kinds: Sequence[WatchedKind]) -> WatchedObjects:
        """Cache these kinds too; only their presence is ever asked, so only their
        keys are kept."""
        self.watched = WatchedObjects(
            [
                self._informer(
                    k.resource, k.label_selector, slimmer(cache_fields.WATCHED), keys_only=True
                )
                for k in kinds
            ]
        )
        return self.watched

    def all(self) -> list[Informer]:
        return [self.claims, self.pvs, self.classes, *self.watched.informers]

    def start_order(self) -> list[list[Informer]]:
        """Groups to start and sync one after the other: whatever the PV handler
        looks at (claims, watched objects) is complete before the first PV arrives,
        so it can tell at once whether a volume needs a worker."""
        return [[self.claims, self.classes, *self.watched.informers], [self.pvs]]

    def storage_class(self, name: str) -> Obj | None:
        return self.classes.get(name)

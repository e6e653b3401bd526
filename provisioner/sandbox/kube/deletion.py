"""What a DELETE does with its DeleteOptions, as kube-apiserver's generic registry does.

- ``preconditions`` (uid, resourceVersion) must hold, else 409.
- ``propagationPolicy`` (or the older ``orphanDependents``) becomes a finalizer for the
  garbage collector: ``Foreground`` adds ``foregroundDeletion``, ``Orphan`` adds
  ``orphan``; ``Background`` (the default) adds nothing. An object with finalizers is
  only marked (``deletionTimestamp``); the garbage-collector emulation
  (``garbage.py``) deletes or frees its dependents and lifts those two finalizers.
  Events take no such finalizer (their registry does not support garbage collection).
- ``dryRun`` runs every check and answers what would happen; nothing is written.
- Namespaces are marked Terminating; the control plane empties and removes them.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from .resources import ResourceType
from .status import ApiError, conflict
from .store import Entry, Store, now

Obj = dict[str, Any]
ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})


class Registry(Protocol):
    """What deletion needs of the registry (registry.py), which calls in here."""

    store: Store

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj: ...

    def list_entries(
        self, rt: ResourceType, namespace: str | None, match: Any
    ) -> tuple[int, list[Entry], str | None, int]: ...


class Deleted(NamedTuple):
    obj: Obj
    gone: bool  # removed now (False: marked, finalizers pending)


def _explicit(options: Obj) -> str | None:
    """The propagation asked for: Orphan, Foreground, Background, or None."""
    orphan = options.get("orphanDependents")
    if orphan is not None:
        return ORPHAN if orphan else "Background"
    policy = options.get("propagationPolicy")
    if policy is None:
        return None
    return {"Orphan": ORPHAN, "Foreground": FOREGROUND}.get(str(policy), str(policy))


def gc_finalizers(finalizers: list[str], options: Obj) -> list[str]:
    """The finalizers after the GC's pair is set from the options (an explicit choice
    wins over one already on the object); the same list when nothing changes."""
    chosen = _explicit(options)
    if chosen is None:
        chosen = next((f for f in finalizers if f in (ORPHAN, FOREGROUND)), "Background")
    kept = [f for f in finalizers if f not in (ORPHAN, FOREGROUND)]
    new = kept + ([chosen] if chosen in (ORPHAN, FOREGROUND) else [])
    return finalizers if set(new) == set(finalizers) else new


def _check_preconditions(rt: ResourceType, current: Obj, options: Obj) -> None:
    meta = current["metadata"]
    pre = options.get("preconditions") or {}
    name = meta["name"]
    if pre.get("uid") and pre["uid"] != meta.get("uid"):
        raise conflict(
            rt,
            name,
            f"Precondition failed: UID in precondition: {pre['uid']}, "
            f"UID in object meta: {meta.get('uid')}",
        )
    if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
        raise conflict(
            rt,
            name,
            "Precondition failed: ResourceVersion in precondition: "
            f"{pre['resourceVersion']}, ResourceVersion in object meta: "
            f"{meta['resourceVersion']}",
        )


def delete(
    reg: Registry, rt: ResourceType, namespace: str, name: str, options: Obj, dry_run: bool
) -> Deleted:
    store = reg.store
    with store.lock:
        current = reg.get(rt, namespace, name)
        _check_preconditions(rt, current, options)
        meta = current["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        new_meta = dict(meta)
        new: Obj = {**current, "metadata": new_meta}
        if rt.plural == "namespaces":
            if name in PROTECTED_NAMESPACES:
                raise ApiError(
                    403, f'namespaces "{name}" is forbidden: this namespace may not be deleted'
                )
            new["status"] = {**(current.get("status") or {}), "phase": "Terminating"}
        elif not (rt.group == "" and rt.plural == "events"):
            finalizers = gc_finalizers(finalizers, options)
            if finalizers:
                new_meta["finalizers"] = finalizers
        if not finalizers and rt.plural != "namespaces":
            if dry_run:
                return Deleted(current, True)
            final = store.remove(rt.storage_key, meta.get("namespace", ""), name)
            assert final is not None
            return Deleted(final, True)
        if not meta.get("deletionTimestamp"):
            new_meta.update(deletionTimestamp=now(), deletionGracePeriodSeconds=0)
        if new == current or dry_run:
            return Deleted(new, False)
        return Deleted(store.put(rt.storage_key, new, "MODIFIED", current), False)


def delete_collection(
    reg: Registry,
    rt: ResourceType,
    namespace: str | None,
    match: Any,
    options: Obj,
    dry_run: bool,
) -> tuple[int, list[Obj]]:
    """(the list's resourceVersion, the items as listed): a real server answers with
    the list it deleted from, not with the objects after their deletion."""
    rv, entries, _, _ = reg.list_entries(rt, namespace, match)
    for entry in entries:
        meta = entry.obj["metadata"]
        try:
            delete(reg, rt, meta.get("namespace", ""), meta["name"], options, dry_run)
        except ApiError as exc:
            if exc.code != 404:
                raise
    return rv, [e.obj for e in entries]

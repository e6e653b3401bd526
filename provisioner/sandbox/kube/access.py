"""Who is asking and whether they may: authentication, impersonation, authorization.

The sandbox's one bearer token (or no token at all) authenticates the administrator,
a member of ``system:masters`` as a cluster's admin certificate is. ``Impersonate-*``
headers (``kubectl --as``, a kubeconfig's ``as:``) switch to another identity after
the requester is authorized to ``impersonate`` it, as kube-apiserver's impersonation
filter does; that identity's requests and access reviews are then judged by the
stored RBAC objects (``rbac.py``). ``Faults.deny`` is asked first, for every identity:
a planted refusal.
"""

from __future__ import annotations

import json
from dataclasses import replace
from email.message import Message
from urllib.parse import unquote

from .faults import Faults
from .rbac import AUTHENTICATED, MASTERS, SA_PREFIX, Attributes, Rbac, User
from .status import ApiError, bad_request, forbidden
from .store import Store

ADMIN = User("sandbox-admin", (MASTERS, AUTHENTICATED))
_EXTRA = "impersonate-extra-"
ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"


def _go_strings(values: list[str]) -> str:
    return "[]string{" + ", ".join(json.dumps(v) for v in values) + "}"


def _go_user(uid: str, groups: list[str], extra: dict[str, list[str]]) -> str:
    """Go's %#v of the user.DefaultInfo an impersonation without a user asked for."""
    shown_groups = _go_strings(groups) if groups else "[]string(nil)"
    pairs = ", ".join(f"{json.dumps(k)}:{_go_strings(v)}" for k, v in sorted(extra.items()))
    shown_extra = f"map[string][]string{{{pairs}}}" if extra else "map[string][]string(nil)"
    return (
        f'&user.DefaultInfo{{Name:"", UID:{json.dumps(uid)}, Groups:{shown_groups}, '
        f"Extra:{shown_extra}}}"
    )


class Access:
    def __init__(
        self, store: Store, faults: Faults, token: str | None, release: tuple[int, int]
    ) -> None:
        self.rbac = Rbac(store, release)
        self.release = release
        self._faults = faults
        self._token = token

    def decide(self, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason): a planted refusal, else the authorizer chain."""
        if attrs.resource_request and self._faults.denies(attrs.verb, attrs.resource):
            return False, ""
        return self.rbac.authorize(attrs)

    def check(self, attrs: Attributes) -> None:
        """Raise the 403 a refused request gets."""
        denial = self._faults.take_denial(attrs) if attrs.resource_request else None
        if denial is not None:
            raise denial
        allowed, reason = self.rbac.authorize(attrs)
        if not allowed:
            raise forbidden(attrs, reason)

    def user(self, headers: Message) -> User:
        """The identity of a request: the admin, or whom it impersonates."""
        if self._token is not None and headers.get("Authorization", "") != (
            f"Bearer {self._token}"
        ):
            raise ApiError(401, "Unauthorized")
        wanted = headers.get("Impersonate-User", "")
        groups = headers.get_all("Impersonate-Group") or []
        uid = headers.get("Impersonate-Uid", "")
        extra: dict[str, list[str]] = {}
        for key, value in headers.items():
            if key.lower().startswith(_EXTRA):
                extra.setdefault(unquote(key.lower()[len(_EXTRA) :]), []).append(value)
        if not wanted:
            if groups or uid or extra:
                raise bad_request(
                    f"requested {_go_user(uid, groups, extra)} without impersonating a user name"
                )
            return ADMIN
        return self._impersonate(ADMIN, wanted, groups, uid, extra)

    def _impersonate(
        self,
        requester: User,
        wanted: str,
        groups: list[str],
        uid: str,
        extra: dict[str, list[str]],
    ) -> User:
        names = wanted[len(SA_PREFIX) :].split(":") if wanted.startswith(SA_PREFIX) else []

        def ask(resource: str, name: str, *, namespace: str = "", group: str = "") -> Attributes:
            return Attributes(
                requester,
                "impersonate",
                group=group,
                resource=resource,
                namespace=namespace,
                name=name,
            )

        asks: list[Attributes] = []
        found: list[str] = list(groups)
        if len(names) == 2 and all(names):
            asks.append(ask("serviceaccounts", names[1], namespace=names[0]))
            if not groups:
                found = ["system:serviceaccounts", f"system:serviceaccounts:{names[0]}"]
        else:
            asks.append(ask("users", wanted))
        asks += [ask("groups", g) for g in groups]
        for key, values in extra.items():
            asks += [
                replace(ask("userextras", v, group="authentication.k8s.io"), subresource=key)
                for v in values
            ]
        if uid:
            asks.append(ask("uids", uid, group="authentication.k8s.io"))
        for attrs in asks:
            allowed, reason = self.decide(attrs)
            if not allowed:
                raise forbidden(attrs, reason)
        if wanted == ANONYMOUS:
            if UNAUTHENTICATED not in found:
                found.append(UNAUTHENTICATED)
        elif not {AUTHENTICATED, UNAUTHENTICATED} & set(found):
            found.append(AUTHENTICATED)
        frozen_extra = tuple((k, tuple(v)) for k, v in extra.items())
        return User(wanted, tuple(found), uid, frozen_extra)

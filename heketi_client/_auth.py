"""Heketi's per-request JWT, as a ``requests`` auth callable.

Heketi binds every token to one method and path through the ``qsh`` claim, so a token
cannot be reused for another request. Making this an ``AuthBase`` means every prepared
request is signed for itself, including each queue poll and the GET we issue after a
303 (``requests`` would otherwise keep the old header on a redirect).

Clock skew. Heketi rejects a token whose ``iat`` is more than 120 s in its future and
enforces ``exp`` with no leeway. We therefore date ``iat`` ``DEFAULT_BACKDATE`` seconds
in the past (Heketi never checks how old ``iat`` is) and set ``exp``
``DEFAULT_LIFETIME`` seconds ahead. With the defaults a request is accepted when our
clock is up to 180 s ahead of Heketi's or up to 300 s behind it. The longer lifetime
costs little: ``qsh`` limits a captured token to the same method and path.

Tokens are only ever signed for the configured origin (``origin``): should a request
to another server get this far (the transport refuses foreign ``Location`` headers
first), it leaves unsigned, so a token valid on our Heketi never reaches another host.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import jwt
import requests
from requests.auth import AuthBase

from heketi_client._urls import origin_of

DEFAULT_LIFETIME = 300.0
"""Seconds from now until ``exp`` (the Go client also uses 5 minutes)."""

DEFAULT_BACKDATE = 60.0
"""Seconds subtracted from now for ``iat``, for servers whose clock is behind ours."""


def query_string_hash(method: str, path: str) -> str:
    """Heketi's ``qsh``: sha256 over "METHOD&/path", without host, query or fragment."""
    return hashlib.sha256(f"{method.upper()}&{path}".encode()).hexdigest()


class HeketiJWTAuth(AuthBase):
    """Signs each request with a fresh HS256 token for its own method and path.

    ``strip_prefix`` is the path part of the base URL (e.g. ``/heketi`` for
    ``https://gw/heketi``). Heketi only serves paths from the root, so a prefix means a
    proxy that removes it before Heketi checks ``qsh``; the hash must therefore cover
    the path Heketi will see, not the one we send.
    """

    def __init__(
        self,
        user: str,
        key: str | bytes,
        *,
        lifetime: float = DEFAULT_LIFETIME,
        backdate: float = DEFAULT_BACKDATE,
        strip_prefix: str = "",
        origin: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not user:
            raise ValueError("a Heketi key needs a user (the JWT issuer, 'admin' or 'user')")
        if lifetime <= 0 or backdate < 0:
            raise ValueError("token lifetime must be positive and backdate not negative")
        self.user = user
        self._key = key.encode() if isinstance(key, str) else bytes(key)
        self.lifetime = lifetime
        self.backdate = backdate
        self.strip_prefix = strip_prefix.rstrip("/")
        self.origin = origin
        self._clock = clock

    def __repr__(self) -> str:
        return f"HeketiJWTAuth(user={self.user!r}, key=<hidden>)"

    def token(self, method: str, path: str) -> str:
        """A token valid for exactly this method and (Heketi-side) path."""
        now = self._clock()
        claims = {
            "iss": self.user,
            "iat": int(now - self.backdate),
            "exp": int(now + self.lifetime),
            "qsh": query_string_hash(method, path),
        }
        return jwt.encode(claims, self._key, algorithm="HS256")

    def heketi_path(self, url: str) -> str:
        """The path Heketi will see for ``url``: no query, no proxy prefix."""
        path = urlsplit(url).path or "/"
        if self.strip_prefix and path.startswith(self.strip_prefix + "/"):
            path = path[len(self.strip_prefix) :]
        return path

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = request.url or "/"
        if self.origin is not None and _origin_or_none(url) != self.origin:
            request.headers.pop("Authorization", None)
            return request
        method = request.method or "GET"
        request.headers["Authorization"] = "bearer " + self.token(method, self.heketi_path(url))
        return request


def _origin_or_none(url: str) -> str | None:
    try:
        return origin_of(url)
    except ValueError:
        return None

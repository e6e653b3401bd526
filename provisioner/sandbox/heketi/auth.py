"""Heketi's JWT check, with its exact statuses, texts and precedence.

Heketi validates in the order of its Go JWT library: signing method, then issuer (to
pick the key), then the time claims, then the signature — and a bad signature
overrides a time-claim error. Re-implemented on the standard library, rather than with
PyJWT, so that this precedence and the wording are ours to control.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

IAT_LEEWAY_SECONDS = 120
ADMIN = "admin"
USER = "user"
_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
# The only request a `user` token may make: exact path, these methods.
USER_ROUTES = {("GET", "/volumes"), ("POST", "/volumes")}
OPEN_PATHS = {"/hello", "/metrics"}


@dataclass(frozen=True)
class AuthFailure:
    status: int
    text: str


def expected_qsh(method: str, path: str) -> str:
    return hashlib.sha256(f"{method.upper()}&{path}".encode()).hexdigest()


def go_duration(seconds: int) -> str:
    """Whole seconds in Go's time.Duration notation (`1h2m3s`, `4m0s`, `5s`)."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _invalid(reason: str) -> AuthFailure:
    return AuthFailure(401, f"Invalid JWT token: {reason}")


class Authenticator:
    """Holds the two keys; `check` answers who is calling or why not.

    The keys are private attributes and never part of any repr or message.
    """

    def __init__(
        self,
        *,
        admin_key: str | None,
        user_key: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = {
            iss: key.encode() for iss, key in ((ADMIN, admin_key), (USER, user_key)) if key
        }
        self._clock = clock

    def __repr__(self) -> str:
        return f"Authenticator(issuers={sorted(self._keys)})"

    def check(self, method: str, path: str, header: str | None) -> AuthFailure | str:
        """The issuer (`admin`/`user`) on success, else the failure to send back."""
        if not header:
            return AuthFailure(401, "Required authorization token not found")
        parts = header.split(" ")
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return AuthFailure(400, "Authorization header format must be Bearer {token}")
        claims_or_failure = self._verify(parts[1])
        if isinstance(claims_or_failure, AuthFailure):
            return claims_or_failure
        claims = claims_or_failure
        if claims.get("qsh") != expected_qsh(method, path):
            return AuthFailure(401, "Invalid qsh claim in token")
        issuer = str(claims["iss"])
        if issuer != ADMIN and (method.upper(), path) not in USER_ROUTES:
            return AuthFailure(401, "Administrator access required")
        return issuer

    def _verify(self, token: str) -> AuthFailure | dict[str, Any]:
        segments = token.split(".")
        if len(segments) != 3:
            return _invalid("token contains an invalid number of segments")
        try:
            header = json.loads(_b64(segments[0]))
            claims = json.loads(_b64(segments[1]))
            signature = _b64(segments[2])
        except (ValueError, binascii.Error):
            return _invalid("token is malformed")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return _invalid("token is malformed")
        alg = header.get("alg")
        if alg not in _HMAC:
            return _invalid(f"Unexpected signing method: {alg}")
        issuer = claims.get("iss")
        if not issuer:
            return _invalid("Token missing iss claim")
        key = self._keys.get(str(issuer))
        if key is None:
            return _invalid("Unknown user")
        signed = f"{segments[0]}.{segments[1]}".encode()
        good = hmac.compare_digest(hmac.new(key, signed, _HMAC[alg]).digest(), signature)
        if not good:
            return _invalid("signature is invalid (client and server secrets may not match)")
        time_error = self._time_error(claims)
        if time_error is not None:
            return time_error
        return claims

    def _time_error(self, claims: dict[str, Any]) -> AuthFailure | None:
        """Later checks overwrite earlier ones, as in the Go library: exp, iat, nbf."""
        now = int(self._clock())
        error: AuthFailure | None = None
        try:
            exp = int(claims.get("exp") or 0)
            iat = claims.get("iat")
            nbf = claims.get("nbf")
            iat = None if iat is None else int(iat)
            nbf = None if nbf is None else int(nbf)
        except (TypeError, ValueError):
            return _invalid("token contains an invalid claim")
        if now > exp:
            error = _invalid(f"Token is expired by {go_duration(now - exp)}")
        if iat is not None and iat > now + IAT_LEEWAY_SECONDS:
            error = _invalid("Token used before issued (client and server clocks may differ)")
        if nbf is not None and now < nbf:
            error = _invalid("Token is not valid yet")
        return error

"""URL helpers: origins to compare, URLs fit for messages, paths fit for metric labels."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}

_ID_SEGMENT = re.compile(r"^[0-9a-fA-F]{8,}$")


def origin_of(url: str, *, default_scheme: str = "") -> str:
    """``scheme://host:port``, lowercase and with the port spelled out, for comparing.

    Two URLs can only reach the same server (and may only see the same tokens) when
    these are equal. ``user:password@`` parts are left out. Raises ``ValueError`` for
    a port that is not a number.
    """
    parts = urlsplit(url)
    scheme = (parts.scheme or default_scheme).lower()
    host = parts.hostname or ""
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def redact_url(url: str) -> str:
    """The URL without any ``user:password@`` part, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()


def route_template(path: str) -> str:
    """``/volumes/<32 hex>/expand?x`` -> ``/volumes/{id}/expand``: a bounded label value.

    Heketi ids (volumes, clusters, nodes, devices, queue entries) are 32 hex digits;
    the fixed segments of its API are words, none of them eight or more hex digits,
    so such runs are ids. Absolute URLs (a Location header) lose scheme and host, so
    neither a host nor a ``user:password@`` part can reach the result.
    """
    route = urlsplit(path).path if path.startswith(("http://", "https://")) else path
    route = route.split("?", 1)[0].split("#", 1)[0]
    segments = ["{id}" if _ID_SEGMENT.match(s) else s for s in route.strip("/").split("/")]
    return "/" + "/".join(s for s in segments if s)

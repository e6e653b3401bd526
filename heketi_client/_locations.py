"""Which ``Location`` headers we follow: Heketi's own, on the server we were given.

An async operation hands us two: the 202's queue entry and the 303's resource. Both
are followed with a freshly signed admin token, so a Location naming another host
would make us send that host our polling and a token minted for it, and a Location
naming another path on our host would make us poll something that is not Heketi's
queue. Both are refused with ``ForeignLocation``.

Heketi sends host-relative paths (``/queue/<id>``). It knows nothing of a proxy prefix
in our base URL (``https://gw/heketi``), and the proxy passes the header on as it is,
so a relative Location is taken as relative to the *base URL*, prefix included: the
RFC 3986 reading (relative to the host) would skip the proxy's prefix. An absolute URL
(from a proxy that rewrites the header) must have our scheme, host and port and a path
under our prefix, which is then taken off. What remains must be exactly
``/<collection>/<id>``: no dot segments, query or fragment, and (as a side effect) only
a few route templates for the metrics.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from heketi_client._urls import origin_of, redact_url
from heketi_client.errors import ForeignLocation, _truncate

_LOCATION_PATH = re.compile(r"/(?:queue|volumes|nodes|devices|clusters|blockvolumes)/[0-9a-f]{32}")


def resolve_location(location: str, *, base_url: str, method: str, path: str, status: int) -> str:
    """The path below ``base_url`` that ``location`` names, or ``ForeignLocation``.

    ``method``, ``path`` and ``status`` describe the answer that carried the header.
    """
    base = urlsplit(base_url)
    origin = origin_of(base_url)
    prefix = base.path.rstrip("/")
    text = location.strip()
    shown = _truncate(text, 120)
    answer = f"in the {status} answer to {method} {path}"
    parts = urlsplit(text)
    offered = origin
    if parts.scheme or parts.netloc:
        try:
            offered = origin_of(text, default_scheme=base.scheme)
        except ValueError:  # a port that is not a number
            offered = "(unreadable)"
        if offered != origin:
            raise ForeignLocation(
                f"Heketi's Location {shown!r} ({answer}) points to {offered}, not to "
                f"{origin} where Heketi was configured; refusing to follow it or to sign "
                "a token for it",
                base_origin=origin,
                offered_origin=offered,
                method=method,
                path=path,
                status=status,
            )
        relative = parts.path
        if parts.query or parts.fragment:
            relative = ""  # Heketi never sends either: refused below
        elif prefix:
            inside = relative.startswith(prefix + "/")
            relative = relative[len(prefix) :] if inside else ""
    else:
        relative = text if text.startswith("/") else "/" + text
    if not _LOCATION_PATH.fullmatch(relative):
        raise ForeignLocation(
            f"Heketi's Location {shown!r} ({answer}) is not a queue entry or resource "
            f"path below {redact_url(base_url)}; refusing to follow it",
            base_origin=origin,
            offered_origin=offered,
            method=method,
            path=path,
            status=status,
        )
    return relative

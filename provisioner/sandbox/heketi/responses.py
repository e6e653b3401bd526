"""HTTP answers in the exact shapes Heketi's Go server produces."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import Any

TEXT = "text/plain; charset=utf-8"
JSON = "application/json; charset=UTF-8"
ID_NOT_FOUND = "Id not found"
CONFLICT = "The target exists, contains other items, or is in use."


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, text: str) -> Response:
    """Go's http.Error: plain text plus a newline, and nosniff."""
    return Response(
        status,
        (text + "\n").encode(),
        {"Content-Type": TEXT, "X-Content-Type-Options": "nosniff"},
    )


def json_response(body: Any, status: int = 200) -> Response:
    """Go's json.Encoder output: compact, one trailing newline."""
    data = json.dumps(body, separators=(",", ":")) + "\n"
    return Response(status, data.encode(), {"Content-Type": JSON})


def text_response(text: str, content_type: str = TEXT) -> Response:
    return Response(200, text.encode(), {"Content-Type": content_type})


def redirect(location: str, status: int, method: str) -> Response:
    """Go's http.Redirect: a short HTML body only for GET and HEAD."""
    if method in ("GET", "HEAD"):
        body = f'<a href="{html.escape(location)}">See Other</a>.\n\n'.encode()
        return Response(
            status, body, {"Location": location, "Content-Type": "text/html; charset=utf-8"}
        )
    return Response(status, b"", {"Location": location})


def accepted(op_id: str) -> Response:
    """202 with the queue path; Heketi sends it through http.Redirect, so no body."""
    return Response(202, b"", {"Location": f"/queue/{op_id}"})

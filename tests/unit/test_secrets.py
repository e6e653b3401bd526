"""The Heketi key Secret: type, the "key" entry, base64, UTF-8."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from provisioner.gluster.credentials import SecretError, secret_key

KEY = "heketi-admin-key-äö"


def secret(
    data: dict[str, str] | None, kind: str | None = "kubernetes.io/glusterfs"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"namespace": "storage", "name": "heketi"},
    }
    if kind is not None:
        body["type"] = kind
    if data is not None:
        body["data"] = data
    return body


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode()


def test_reads_the_key_entry() -> None:
    assert secret_key(secret({"key": b64(KEY), "other": b64("nope")})) == KEY


@pytest.mark.parametrize("kind", ["Opaque", None, "kubernetes.io/tls"])
def test_wrong_type_names_secret_and_type(kind: str | None) -> None:
    with pytest.raises(SecretError) as info:
        secret_key(secret({"key": b64(KEY)}, kind=kind))
    assert "storage/heketi" in str(info.value)
    assert (f'type "{kind}"' if kind else "no type") in str(info.value)
    assert "kubernetes.io/glusterfs" in str(info.value)
    assert KEY not in str(info.value)


def test_missing_key_lists_entry_names_not_values() -> None:
    other = "the-value-of-another-entry"
    with pytest.raises(SecretError) as info:
        secret_key(secret({"password": b64(other), "admin": b64(KEY)}))
    message = str(info.value)
    assert '"admin", "password"' in message
    assert b64(other) not in message and other not in message and KEY not in message


@pytest.mark.parametrize("data", [None, {}])
def test_no_data_at_all(data: dict[str, str] | None) -> None:
    with pytest.raises(SecretError, match=r"no \"key\" entry \(entries present: none\)"):
        secret_key(secret(data))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not base64!!", "not valid base64"),
        ("YWJ", "not valid base64"),
        (b64(b"\xff\xfe\x00"), "UTF-8"),
        ("", "is empty"),
    ],
)
def test_bad_key_values(value: str, problem: str) -> None:
    with pytest.raises(SecretError, match=problem) as info:
        secret_key(secret({"key": value}))
    assert value not in str(info.value) or value == ""
    assert info.value.__cause__ is None

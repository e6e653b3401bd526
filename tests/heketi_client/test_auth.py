"""Every request carries its own token, bound to its method and path (not the query)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import requests
import responses

from heketi_client import HeketiClient
from heketi_client._auth import DEFAULT_BACKDATE, DEFAULT_LIFETIME, HeketiJWTAuth


def qsh(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_qsh_covers_method_and_path_but_not_the_query(method: str, wire: Any) -> None:
    auth = HeketiJWTAuth("admin", wire.KEY)
    request = requests.Request(
        method, f"{wire.BASE}/volumes/{wire.VOL}?verbose=1&x=y#frag", json={}
    ).prepare()
    claims = wire.claims_of(auth(request))
    assert claims["qsh"] == qsh(f"{method}&/volumes/{wire.VOL}")
    assert claims["iss"] == "admin"


def test_claims_tolerate_clock_skew_both_ways(wire: Any) -> None:
    auth = HeketiJWTAuth("user", wire.KEY, clock=lambda: 5000.5)
    request = auth(requests.Request("GET", f"{wire.BASE}/volumes").prepare())
    token = request.headers["Authorization"].split(" ", 1)[1]
    claims = jwt.decode(token, wire.KEY, algorithms=["HS256"], options={"verify_exp": False})
    assert claims["iat"] == int(5000.5 - DEFAULT_BACKDATE)
    assert claims["exp"] == int(5000.5 + DEFAULT_LIFETIME)
    assert isinstance(claims["iat"], int) and isinstance(claims["exp"], int)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_a_wrong_key_does_not_verify(wire: Any) -> None:
    request = HeketiJWTAuth("admin", "x" * 40)(requests.Request("GET", wire.BASE + "/x").prepare())
    with pytest.raises(jwt.InvalidSignatureError):
        wire.claims_of(request)


def test_path_prefix_of_a_proxy_is_not_hashed(wire: Any) -> None:
    """Heketi serves from the root, so a base path means a proxy that strips it."""
    auth = HeketiJWTAuth("admin", wire.KEY, strip_prefix="/heketi/")
    request = auth(requests.Request("GET", "https://gw.example/heketi/clusters").prepare())
    assert wire.claims_of(request)["qsh"] == qsh("GET&/clusters")


def test_each_client_request_is_signed_for_itself(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(f"{wire.BASE}/volumes", json={"volumes": [wire.VOL]})
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", json=wire.volume_json())
    client.list_volumes()
    client.get_volume(wire.VOL)
    hashes = [wire.claims_of(call.request)["qsh"] for call in heketi.calls]
    assert hashes == [qsh("GET&/volumes"), qsh(f"GET&/volumes/{wire.VOL}")]
    for call in heketi.calls:
        claims = wire.claims_of(call.request)
        assert claims["iat"] <= time.time() < claims["exp"]


def test_no_key_means_no_authorization_header(
    make_client: Callable[..., HeketiClient], heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.get(f"{wire.BASE}/clusters", json={"clusters": []})
    make_client(user=None, key=None).list_clusters()
    assert "Authorization" not in heketi.calls[0].request.headers


def test_a_key_without_a_user_is_refused_without_echoing_the_key(
    make_client: Callable[..., HeketiClient], wire: Any
) -> None:
    with pytest.raises(ValueError) as caught:
        make_client(user=None, key=wire.KEY)
    assert wire.KEY not in str(caught.value)


def test_auth_repr_hides_the_key(wire: Any) -> None:
    auth = HeketiJWTAuth("admin", wire.KEY)
    assert wire.KEY not in repr(auth) and "hidden" in repr(auth)

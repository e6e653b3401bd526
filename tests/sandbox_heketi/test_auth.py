"""Every row of heketi-api.md's authentication table, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import requests

from provisioner.sandbox.heketi import HeketiSimulator
from provisioner.sandbox.heketi.auth import Authenticator, expected_qsh, go_duration

ADMIN_KEY = "unit-admin-key-long-enough-for-hs256"


def raw(
    sim: HeketiSimulator, method: str, path: str, authorization: str | None
) -> requests.Response:
    headers = {} if authorization is None else {"Authorization": authorization}
    return requests.request(
        method, sim.url + path, headers=headers, allow_redirects=False, timeout=10
    )


def assert_text(response: requests.Response, status: int, text: str) -> None:
    assert response.status_code == status
    assert response.text == text + "\n"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"


def test_missing_header(sim: HeketiSimulator) -> None:
    assert_text(raw(sim, "GET", "/clusters", None), 401, "Required authorization token not found")


@pytest.mark.parametrize("header", ["token-only", "Basic abc", "bearer a b", "bearer"])
def test_header_not_bearer_token(sim: HeketiSimulator, header: str) -> None:
    assert_text(
        raw(sim, "GET", "/clusters", header),
        400,
        "Authorization header format must be Bearer {token}",
    )


@pytest.mark.parametrize("scheme", ["bearer", "Bearer", "BEARER"])
def test_scheme_is_case_insensitive(
    sim: HeketiSimulator, scheme: str, token: Callable[..., str]
) -> None:
    response = raw(sim, "GET", "/clusters", f"{scheme} {token('GET', '/clusters')}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"


def test_non_hmac_algorithm(sim: HeketiSimulator) -> None:
    tok = jwt.encode({"iss": "admin"}, None, algorithm="none")
    assert_text(
        raw(sim, "GET", "/clusters", f"bearer {tok}"),
        401,
        "Invalid JWT token: Unexpected signing method: none",
    )


def test_missing_and_unknown_issuer(sim: HeketiSimulator, token: Callable[..., str]) -> None:
    missing = token("GET", "/clusters", iss=None)
    assert_text(
        raw(sim, "GET", "/clusters", f"bearer {missing}"),
        401,
        "Invalid JWT token: Token missing iss claim",
    )
    unknown = token("GET", "/clusters", iss="root")
    assert_text(
        raw(sim, "GET", "/clusters", f"bearer {unknown}"), 401, "Invalid JWT token: Unknown user"
    )


def test_bad_signature(sim: HeketiSimulator, token: Callable[..., str]) -> None:
    tok = token("GET", "/clusters", key="not-the-key-but-just-as-long-as-one")
    assert_text(
        raw(sim, "GET", "/clusters", f"bearer {tok}"),
        401,
        "Invalid JWT token: signature is invalid (client and server secrets may not match)",
    )


def test_user_key_does_not_sign_admin_tokens(
    sim: HeketiSimulator, token: Callable[..., str], keys: dict[str, str]
) -> None:
    tok = token("GET", "/clusters", iss="admin", key=keys["user"])
    assert "signature is invalid" in raw(sim, "GET", "/clusters", f"bearer {tok}").text


def test_expired_token_reports_how_long_ago() -> None:
    auth = Authenticator(admin_key=ADMIN_KEY, user_key=None, clock=lambda: 10_000.0)
    tok = jwt.encode(
        {"iss": "admin", "exp": 10_000 - 90, "qsh": expected_qsh("GET", "/x")},
        ADMIN_KEY,
        algorithm="HS256",
    )
    failure = auth.check("GET", "/x", f"bearer {tok}")
    assert not isinstance(failure, str)
    assert (failure.status, failure.text) == (401, "Invalid JWT token: Token is expired by 1m30s")


def test_exp_equal_to_now_passes() -> None:
    auth = Authenticator(admin_key=ADMIN_KEY, user_key=None, clock=lambda: 10_000.0)
    tok = jwt.encode(
        {"iss": "admin", "exp": 10_000, "qsh": expected_qsh("GET", "/x")},
        ADMIN_KEY,
        algorithm="HS256",
    )
    assert auth.check("GET", "/x", f"bearer {tok}") == "admin"


def test_expired_and_missing_exp_over_http(sim: HeketiSimulator, token: Callable[..., str]) -> None:
    expired = token("GET", "/clusters", exp=int(time.time()) - 3700)
    response = raw(sim, "GET", "/clusters", f"bearer {expired}")
    assert response.status_code == 401
    assert response.text.startswith("Invalid JWT token: Token is expired by 1h1m")
    no_exp = token("GET", "/clusters", exp=None)
    response = raw(sim, "GET", "/clusters", f"bearer {no_exp}")
    assert response.status_code == 401
    assert response.text.startswith("Invalid JWT token: Token is expired by ")


def test_iat_in_the_future(sim: HeketiSimulator, token: Callable[..., str]) -> None:
    now = int(time.time())
    ok = token("GET", "/clusters", iat=now + 60)
    assert raw(sim, "GET", "/clusters", f"bearer {ok}").status_code == 200
    ahead = token("GET", "/clusters", iat=now + 600, exp=now + 900)
    assert_text(
        raw(sim, "GET", "/clusters", f"bearer {ahead}"),
        401,
        "Invalid JWT token: Token used before issued (client and server clocks may differ)",
    )


@pytest.mark.parametrize(
    ("signed_method", "signed_path"),
    [("GET", "/volumes"), ("POST", "/clusters"), ("GET", "/clusters?x=1"), ("get", "/clusters")],
)
def test_wrong_qsh(
    sim: HeketiSimulator, signed_method: str, signed_path: str, token: Callable[..., str]
) -> None:
    tok = token(signed_method, signed_path)
    assert_text(raw(sim, "GET", "/clusters", f"bearer {tok}"), 401, "Invalid qsh claim in token")


def test_missing_qsh(sim: HeketiSimulator, token: Callable[..., str]) -> None:
    tok = token("GET", "/clusters", qsh=None)
    assert_text(raw(sim, "GET", "/clusters", f"bearer {tok}"), 401, "Invalid qsh claim in token")


def test_qsh_ignores_the_query_string(sim: HeketiSimulator, token: Callable[..., str]) -> None:
    tok = token("GET", "/clusters")
    assert raw(sim, "GET", "/clusters?verbose=1", f"bearer {tok}").status_code == 200


def test_user_role_only_on_exact_volumes_path(
    sim: HeketiSimulator, keys: dict[str, str], client_for: Callable[..., Any]
) -> None:
    user = client_for(sim, iss="user", key=keys["user"])
    assert user.get("/volumes").status_code == 200
    created = user.post("/volumes", {"size": 1})
    assert created.status_code == 202
    # ...but the user cannot poll its own operation.
    assert_text(user.get(created.headers["Location"]), 401, "Administrator access required")
    for method, path in [
        ("GET", "/clusters"),
        ("GET", f"/volumes/{'a' * 32}"),
        ("DELETE", f"/volumes/{'a' * 32}"),
        ("GET", "/operations"),
        ("GET", "/volumes/"),
    ]:
        assert_text(user.call(method, path), 401, "Administrator access required")


def test_auth_runs_before_routing(sim: HeketiSimulator, client_for: Callable[..., Any]) -> None:
    assert_text(
        raw(sim, "GET", "/no/such/path", None), 401, "Required authorization token not found"
    )
    heketi = client_for(sim)
    assert_text(heketi.get("/no/such/path"), 404, "Invalid path or request")


def test_hello_and_metrics_need_no_token(sim: HeketiSimulator) -> None:
    hello = raw(sim, "GET", "/hello", None)
    assert (hello.status_code, hello.text) == (200, "Hello from Heketi")
    metrics = raw(sim, "GET", "/metrics", None)
    assert metrics.status_code == 200
    assert "heketi_up 1" in metrics.text.splitlines()


def test_auth_can_be_disabled(make_sim: Callable[..., HeketiSimulator]) -> None:
    sim = make_sim(auth=False, admin_key=None)
    assert raw(sim, "GET", "/clusters", None).status_code == 200


def test_auth_needs_an_admin_key() -> None:
    with pytest.raises(ValueError, match="admin_key"):
        HeketiSimulator(admin_key=None)


def test_keys_never_appear_in_reprs_or_records(
    sim: HeketiSimulator,
    token: Callable[..., str],
    keys: dict[str, str],
    client_for: Callable[..., Any],
) -> None:
    heketi = client_for(sim)
    heketi.get("/clusters")
    raw(
        sim,
        "GET",
        "/clusters",
        f"bearer {token('GET', '/clusters', key='wrong-key-that-is-long-enough-for-hs256')}",
    )
    text = repr(sim) + repr(sim.faults) + repr(sim.requests) + repr(sim._frontend.auth)
    assert keys["admin"] not in text and keys["user"] not in text
    assert "bearer" not in text.lower()


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (5, "5s"), (90, "1m30s"), (3600, "1h0m0s"), (3725, "1h2m5s")]
)
def test_go_duration(seconds: int, text: str) -> None:
    assert go_duration(seconds) == text

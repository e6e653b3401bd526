"""Fixtures for the Heketi simulator tests: a running simulator and a raw HTTP helper
that signs each request the way Heketi's clients do (PyJWT, HS256, per-request qsh)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import pytest
import requests

from provisioner.sandbox.heketi import HeketiSimulator
from provisioner.sandbox.waiting import wait_for

ADMIN_KEY = "admin-secret-for-the-simulator-tests"
USER_KEY = "user-secret-for-the-simulator-tests!"


def qsh(method: str, path: str) -> str:
    return hashlib.sha256(f"{method}&{path}".encode()).hexdigest()


def make_token(
    method: str,
    path: str,
    *,
    iss: str = "admin",
    key: str = ADMIN_KEY,
    lifetime: int = 300,
    **overrides: Any,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": iss,
        "iat": now,
        "exp": now + lifetime,
        "qsh": qsh(method, path),
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="HS256")


class Heketi:
    """Raw HTTP against the simulator: no redirects followed, a fresh token each call."""

    def __init__(self, sim: HeketiSimulator, *, iss: str = "admin", key: str = ADMIN_KEY) -> None:
        self.sim = sim
        self.iss = iss
        self.key = key
        self.session = requests.Session()

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        headers = {
            "Authorization": "bearer " + make_token(method, path, iss=self.iss, key=self.key)
        }
        kwargs.setdefault("timeout", 10)
        return self.session.request(
            method, self.sim.url + path, json=body, headers=headers, allow_redirects=False, **kwargs
        )

    def get(self, path: str) -> requests.Response:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None) -> requests.Response:
        return self.call("POST", path, {} if body is None else body)

    def delete(self, path: str) -> requests.Response:
        return self.call("DELETE", path)

    @staticmethod
    def until(condition: Callable[[], bool], deadline: float = 10.0) -> None:
        """Wait for a condition with a deadline (never a bare sleep)."""
        wait_for(condition, deadline, "the condition", interval=0.005)

    def wait(self, queue_path: str, deadline: float = 10.0) -> requests.Response:
        """Poll a queue entry until it stops being pending (deadline, not sleeps)."""

        def done() -> tuple[requests.Response] | None:  # a tuple: a 404 Response is falsy
            response = self.get(queue_path)
            pending = response.status_code == 200 and "X-Pending" in response.headers
            return None if pending else (response,)

        (response,) = wait_for(done, deadline, f"{queue_path} to end", interval=0.01)
        return response

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a volume through the whole async protocol; its JSON."""
        response = self.post("/volumes", body)
        assert response.status_code == 202, response.text
        done = self.wait(response.headers["Location"])
        assert done.status_code == 303, done.text
        info = self.get(done.headers["Location"])
        assert info.status_code == 200, info.text
        return info.json()

    def remove(self, volume_id: str) -> None:
        response = self.delete(f"/volumes/{volume_id}")
        assert response.status_code == 202, response.text
        assert self.wait(response.headers["Location"]).status_code == 204


@pytest.fixture
def make_sim() -> Iterator[Callable[..., HeketiSimulator]]:
    """Factory for started simulators (stopped at teardown); keys preset for tests."""
    started: list[HeketiSimulator] = []

    def factory(**kwargs: Any) -> HeketiSimulator:
        kwargs.setdefault("admin_key", ADMIN_KEY)
        kwargs.setdefault("user_key", USER_KEY)
        kwargs.setdefault("seed", 7)
        sim = HeketiSimulator(**kwargs)
        sim.start()
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(make_sim: Callable[..., HeketiSimulator]) -> HeketiSimulator:
    return make_sim()


@pytest.fixture
def heketi(sim: HeketiSimulator) -> Heketi:
    return Heketi(sim)


@pytest.fixture
def client_for() -> Callable[..., Heketi]:
    """`client_for(sim, iss="user", key=...)`: a raw client with another identity."""
    return Heketi


@pytest.fixture
def token() -> Callable[..., str]:
    """`token(method, path, iss=..., key=..., **claim_overrides)`; None drops a claim."""
    return make_token


@pytest.fixture
def keys() -> dict[str, str]:
    return {"admin": ADMIN_KEY, "user": USER_KEY}

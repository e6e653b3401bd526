"""The per-resource methods: paths, bodies, parsing, and what the client shows of itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses

from heketi_client import HeketiClient, VolumeCreateRequest


def test_hello(client: HeketiClient, heketi: responses.RequestsMock, wire: Any) -> None:
    heketi.get(wire.BASE + "/hello", body="Hello from Heketi")
    assert client.hello() == "Hello from Heketi"


def test_topology_reads(client: HeketiClient, heketi: responses.RequestsMock, wire: Any) -> None:
    heketi.get(wire.BASE + "/clusters", json={"clusters": [wire.CLUSTER]})
    heketi.get(
        f"{wire.BASE}/clusters/{wire.CLUSTER}",
        json={
            "id": wire.CLUSTER,
            "nodes": list(wire.NODES),
            "volumes": [],
            "block": False,
            "file": True,
            "blockvolumes": [],
        },
    )
    node = {
        "zone": 2,
        "hostnames": {"manage": ["n1"], "storage": ["10.0.0.1"]},
        "cluster": wire.CLUSTER,
        "id": wire.NODES[0],
        "state": "online",
        "devices": [],
    }
    heketi.get(f"{wire.BASE}/nodes/{wire.NODES[0]}", json=node)
    device = {
        "name": "/dev/vdb",
        "storage": {"total": 100, "free": 60, "used": 40},
        "id": wire.DEVICES[0],
        "state": "online",
        "bricks": [],
    }
    heketi.get(f"{wire.BASE}/devices/{wire.DEVICES[0]}", json=device)

    assert client.list_clusters() == [wire.CLUSTER]
    assert client.get_cluster(wire.CLUSTER).nodes == wire.NODES
    assert client.get_node(wire.NODES[0]).zone == 2
    assert client.get_device(wire.DEVICES[0]).free == 60


def test_create_sends_the_request_json(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    heketi.post(wire.BASE + "/volumes", status=202, headers={"Location": wire.QUEUE})
    heketi.get(wire.BASE + wire.QUEUE, status=303, headers={"Location": f"/volumes/{wire.VOL}"})
    heketi.get(f"{wire.BASE}/volumes/{wire.VOL}", json=wire.volume_json(name="pvc-1"))
    request = VolumeCreateRequest(10, name="pvc-1", gid=2001)
    assert client.create_volume(request).name == "pvc-1"
    assert json.loads(heketi.calls[0].request.body or b"") == request.to_json()


def test_find_volume_by_name_reads_volumes_and_skips_vanished_ones(
    client: HeketiClient, heketi: responses.RequestsMock, wire: Any
) -> None:
    gone, other, wanted = "1" * 32, "2" * 32, "3" * 32
    heketi.get(wire.BASE + "/volumes", json={"volumes": [gone, other, wanted]})
    heketi.get(f"{wire.BASE}/volumes/{gone}", status=404, body="Id not found")
    heketi.get(f"{wire.BASE}/volumes/{other}", json=wire.volume_json(other, name="other"))
    heketi.get(f"{wire.BASE}/volumes/{wanted}", json=wire.volume_json(wanted, name="pvc-9"))
    found = client.find_volume_by_name("pvc-9")
    assert found is not None and found.id == wanted
    assert client.find_volume_by_name("missing") is None


@pytest.mark.parametrize("bad", ["../clusters", "", "abc/def", "vol_abc"])
def test_ids_must_be_hex_so_they_cannot_address_other_paths(
    client: HeketiClient, heketi: responses.RequestsMock, bad: str
) -> None:
    with pytest.raises(ValueError, match="hexadecimal"):
        client.get_volume(bad)
    with pytest.raises(ValueError):
        client.delete_volume(bad)
    assert not heketi.calls


def test_expand_size_must_be_positive(client: HeketiClient, wire: Any) -> None:
    with pytest.raises(ValueError):
        client.expand_volume(wire.VOL, 0)


def test_repr_shows_url_and_user_but_no_secrets(
    make_client: Callable[..., HeketiClient], wire: Any
) -> None:
    client = make_client(url="http://ops:pa55word@heketi.test:8080/")
    text = repr(client) + str(client)
    assert "heketi.test:8080" in text and "admin" in text
    assert wire.KEY not in text and "pa55word" not in text


@pytest.mark.parametrize("url", ["heketi:8080", "ftp://heketi", "http://"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="Heketi URL"):
        HeketiClient(url)


class RecordingSession(requests.Session):
    closed = False

    def close(self) -> None:
        self.closed = True
        super().close()


def test_a_given_session_is_used_and_left_open(
    make_client: Callable[..., HeketiClient], heketi: responses.RequestsMock, wire: Any
) -> None:
    session = RecordingSession()
    session.headers["User-Agent"] = "heketi-provisioner-test"
    heketi.get(wire.BASE + "/clusters", json={"clusters": []})
    with make_client(session=session) as client:
        client.list_clusters()
    assert heketi.calls[0].request.headers["User-Agent"] == "heketi-provisioner-test"
    assert not session.closed


def test_own_session_is_closed_on_exit(
    make_client: Callable[..., HeketiClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(requests, "Session", RecordingSession)
    with make_client() as client:
        session = client._transport.session
    assert isinstance(session, RecordingSession) and session.closed


def test_owned_session_pools_connections(make_client: Callable[..., HeketiClient]) -> None:
    client = make_client(pool_size=32)
    adapter = client._transport.session.get_adapter("http://heketi.test")
    assert adapter._pool_maxsize == 32  # type: ignore[attr-defined]

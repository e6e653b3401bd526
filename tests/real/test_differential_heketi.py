"""Differential fidelity: the Heketi simulator against the real Heketi v10.3.0.

One scripted sequence of requests runs against a fresh simulator and a fresh real
Heketi (mock executor) with the same topology (1 cluster, 3 nodes in zones 1-3, 2
devices of 500 GiB each, the same storage addresses) and the same admin/user keys.
Each answer is recorded as fields (status, Location shape, body: JSON flattened to
dotted paths, or trimmed text), with ids replaced by ``<id>``, and the two records are
compared field by field. A difference must be listed in ``ALLOWLIST`` (step, field
pattern, reason); the same list is in ``provisioner/sandbox/heketi/README.md``.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from provisioner.sandbox.heketi import HeketiSimulator
from testbeds.peers import (
    BLOCK_HOSTING_GIB,
    HEKETI_ADMIN_KEY,
    HEKETI_USER_KEY,
    Peers,
    default_topology,
    start_heketi,
)

from .differential import check_against_allowlist, differences, flatten

pytestmark = pytest.mark.timeout(120)

NODES = 3
DEVICES = 2
DEVICE_GB = 500  # the mock executor's default device size

# (step, field pattern (fnmatch), reason). Keep in step with the sandbox README.
ALLOWLIST: list[tuple[str, str, str]] = [
    (
        "metrics",
        "body",
        "the simulator exports only heketi_up, cluster/node/volume counts, device "
        "size/free/used and in-flight operations, without HELP lines for most, with "
        "fewer labels and integer values; the real one also has the Go/process "
        "collectors, *_bytes and brick/device counts and operation counters",
    ),
    (
        "metrics",
        "content-type",
        "the real binary's newer Prometheus client appends '; escaping=underscores' "
        "(a build detail of the peer, not of Heketi v10.3.0's wire format)",
    ),
]


BLOCK_ALLOWLIST: list[tuple[str, str, str]] = []
"""The block script's allowed differences (also in the sandbox README)."""
for _step in ("block-info", "block-noauth-info"):
    BLOCK_ALLOWLIST.append(
        (
            _step,
            "body.blockvolume.iqn",
            "the mock executor answers 'fakeIQN'; the simulator answers what gluster-block "
            "does (iqn.2016-12.org.gluster-block:<uuid>), a name the API server accepts",
        )
    )
BLOCK_ALLOWLIST += [
    (
        "block-info",
        "body.blockvolume.username",
        "the mock executor answers 'heketi-user'; gluster-block (and the simulator) a uuid",
    ),
    (
        "block-info",
        "body.blockvolume.password",
        "the mock executor answers 'secret'; gluster-block (and the simulator) a uuid",
    ),
]


# -- tokens ------------------------------------------------------------------------------


def _qsh(method: str, path: str) -> str:
    return hashlib.sha256(f"{method.upper()}&{path}".encode()).hexdigest()


def auth_header(shape: str, method: str, path: str) -> dict[str, str]:
    """The Authorization header of one token shape (``none``: no header at all)."""
    if shape == "none":
        return {}
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "admin",
        "iat": now - 60,
        "exp": now + 300,
        "qsh": _qsh(method, path),
    }
    key = HEKETI_ADMIN_KEY
    if shape == "user":
        claims["iss"], key = "user", HEKETI_USER_KEY
    elif shape == "wrong_key":
        key = "not-the-admin-key-0123456789abcdef"
    elif shape == "unknown_iss":
        claims["iss"] = "mallory"
    elif shape == "no_qsh":
        del claims["qsh"]
    elif shape == "wrong_qsh":
        claims["qsh"] = _qsh("GET", "/somewhere/else")
    elif shape == "bad_scheme":
        return {"Authorization": "token " + jwt.encode(claims, key, algorithm="HS256")}
    elif shape == "expired":
        claims["iat"], claims["exp"] = now - 120, now - 30
    elif shape != "admin":
        raise ValueError(shape)
    return {"Authorization": "bearer " + jwt.encode(claims, key, algorithm="HS256")}


# -- the script --------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    name: str
    method: str
    path: str  # may hold {vol}, {queue}: filled from earlier answers
    body: Any = None
    auth: str = "admin"
    poll: bool = False  # GET {queue} until it stops being pending
    capture: tuple[str, str] | None = None  # (ctx key, JSON list field): its first id
    raw: bytes | None = None  # a raw body instead of JSON
    each: str | None = None  # run once per id of this captured list, as {each}


BIG = NODES * DEVICES * DEVICE_GB  # more than the whole cluster holds

SCRIPT: list[Step] = [
    Step("hello", "GET", "/hello", auth="none"),
    Step("no-auth-header", "GET", "/clusters", auth="none"),
    Step("wrong-key", "GET", "/clusters", auth="wrong_key"),
    Step("unknown-issuer", "GET", "/clusters", auth="unknown_iss"),
    Step("no-qsh", "GET", "/clusters", auth="no_qsh"),
    Step("wrong-qsh", "GET", "/clusters", auth="wrong_qsh"),
    Step("expired", "GET", "/clusters", auth="expired"),
    Step("bad-scheme", "GET", "/clusters", auth="bad_scheme"),
    Step("user-list-volumes", "GET", "/volumes", auth="user"),
    Step("user-list-clusters", "GET", "/clusters", auth="user"),
    Step("user-volume-info", "GET", "/volumes/" + "0" * 32, auth="user"),
    Step("cluster-list", "GET", "/clusters", capture=("cluster", "clusters")),
    Step("cluster-info", "GET", "/clusters/{cluster}", capture=("node", "nodes")),
    Step("node-info", "GET", "/nodes/{each}", each="node_all"),
    Step("unknown-queue", "GET", "/queue/" + "0" * 32),
    Step("wrong-method", "PUT", "/volumes"),
    Step("bad-json", "POST", "/volumes", raw=b"{not json"),
    Step("size-0", "POST", "/volumes", {"size": 0}),
    Step(
        "bad-disperse",
        "POST",
        "/volumes",
        {"size": 4, "durability": {"type": "disperse", "disperse": {"data": 3, "redundancy": 1}}},
    ),
    Step("unknown-volume", "GET", "/volumes/" + "0" * 32),
    Step("unknown-route", "GET", "/no/such/route"),
    Step("no-auth-unknown-route", "GET", "/no/such/route", auth="none"),
    Step(
        "create",
        "POST",
        "/volumes",
        {
            "size": 2,
            "name": "diffvol",
            "gid": 2001,
            "durability": {"type": "replicate", "replicate": {"replica": 3}},
            "snapshot": {"enable": True, "factor": 1.5},
        },
    ),
    Step("create-poll", "GET", "{queue}", poll=True),
    Step("create-poll-again", "GET", "{queue}"),
    Step("volume-info", "GET", "/volumes/{vol}"),
    Step("volume-list", "GET", "/volumes"),
    Step("node-usage", "GET", "/nodes/{each}", each="node_all"),
    Step("expand", "POST", "/volumes/{vol}/expand", {"expand_size": 1}),
    Step("expand-poll", "GET", "{queue}", poll=True),
    Step("expanded-info", "GET", "/volumes/{vol}"),
    # Expand and clone errors. A successful clone cannot be compared: Heketi v10.3.0's
    # mock executor panics in the clone's Exec (volume_entry.go updateCloneBrickPaths:
    # index out of range, the mock reports a clone without bricks) and the server
    # exits. The simulator's clone follows the source (NewVolumeEntryFromClone: the
    # source's size, durability, gid, options and cluster; name "vol_<id>" if none).
    Step("expand-zero", "POST", "/volumes/{vol}/expand", {"expand_size": 0}),
    Step("expand-negative", "POST", "/volumes/{vol}/expand", {"expand_size": -1}),
    Step("expand-bad-json", "POST", "/volumes/{vol}/expand", raw=b"{not json"),
    Step("expand-too-big", "POST", "/volumes/{vol}/expand", {"expand_size": BIG}),
    Step("expand-unknown", "POST", "/volumes/" + "0" * 32 + "/expand", {"expand_size": 1}),
    Step("clone-unknown", "POST", "/volumes/" + "0" * 32 + "/clone", {}),
    Step("clone-bad-name", "POST", "/volumes/{vol}/clone", {"name": "no spaces"}),
    Step(
        "replica-4",
        "POST",
        "/volumes",
        {"size": 1, "durability": {"type": "replicate", "replicate": {"replica": 4}}},
    ),
    Step("too-big", "POST", "/volumes", {"size": BIG, "durability": {"type": "none"}}),
    Step("duplicate-name", "POST", "/volumes", {"size": 1, "name": "diffvol"}),
    Step("delete", "DELETE", "/volumes/{vol}"),
    Step("delete-poll", "GET", "{queue}", poll=True),
    Step("deleted-info", "GET", "/volumes/{vol}"),
    Step("empty-list", "GET", "/volumes"),
    Step("delete-unknown", "DELETE", "/volumes/" + "0" * 32),
    Step("metrics", "GET", "/metrics", auth="none"),
]


BLOCK_SCRIPT: list[Step] = [
    Step("block-empty-list", "GET", "/blockvolumes"),
    Step("block-bad-json", "POST", "/blockvolumes", raw=b"{not json"),
    Step("block-unknown", "GET", "/blockvolumes/" + "0" * 32),
    Step("block-delete-unknown", "DELETE", "/blockvolumes/" + "0" * 32),
    Step("block-too-big", "POST", "/blockvolumes", {"size": BLOCK_HOSTING_GIB + 1}),
    Step(
        "block-create",
        "POST",
        "/blockvolumes",
        {"size": 5, "name": "diffblock", "hacount": 3, "auth": True},
    ),
    Step("block-create-poll", "GET", "{queue}", poll=True),
    Step("block-info", "GET", "/blockvolumes/{block}"),
    Step("block-list", "GET", "/blockvolumes"),
    Step("block-hosting-info", "GET", "/volumes/{bhv}"),
    Step("block-cluster", "GET", "/clusters/{cluster}", capture=("node", "nodes")),
    Step("block-create-noauth", "POST", "/blockvolumes", {"size": 3}),
    Step("block-create-noauth-poll", "GET", "{queue}", poll=True),
    Step("block-noauth-info", "GET", "/blockvolumes/{block}"),
    Step("block-delete", "DELETE", "/blockvolumes/{block}"),
    Step("block-delete-poll", "GET", "{queue}", poll=True),
    Step("block-deleted-info", "GET", "/blockvolumes/{block}"),
    Step("block-hosting-after", "GET", "/volumes/{bhv}"),
]
"""Block volumes, on a Heketi configured with auto-created block-hosting volumes of
``BLOCK_HOSTING_GIB``."""

# -- running and normalising ---------------------------------------------------------------

ID = re.compile(r"[0-9a-f]{32}")
EXPIRED_BY = re.compile(r"(Token is expired by )\S+")


def _norm_text(text: str) -> str:
    return EXPIRED_BY.sub(r"\1<duration>", ID.sub("<id>", text.strip()))


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    flatten(value, prefix, out, _norm_text)


def _mount_stable(body: Any) -> Any:
    """The order of ``mount.glusterfs.hosts`` follows node ids (random): sort the hosts
    and name the first one ``<host>`` in ``device``."""
    try:
        mount = body["mount"]["glusterfs"]
    except (KeyError, TypeError):
        return body
    hosts = mount.get("hosts") or []
    if hosts and mount.get("device", "").startswith(hosts[0] + ":"):
        mount["device"] = "<host>" + mount["device"][len(hosts[0]) :]
    mount["hosts"] = sorted(hosts)
    opts = mount.get("options") or {}
    if "backup-volfile-servers" in opts:
        opts["backup-volfile-servers"] = f"<{len(opts['backup-volfile-servers'].split(','))} hosts>"
    return body


def _devices_by_name(body: Any) -> Any:
    """A node's devices come in id order (random): order them by name. Which device
    of a node gets a brick is random too: once a device holds bricks, order by used
    space and hide the names (each node then reads "the used device, the empty one")."""
    if isinstance(body, dict) and isinstance(body.get("bricks"), list):
        body["bricks"].sort(key=lambda b: int(b.get("size", 0)))  # id order: random
    if isinstance(body, dict) and isinstance(body.get("devices"), list):
        devices = body["devices"]
        if any(d.get("bricks") for d in devices):
            for d in devices:
                d["name"] = "<device>"
            devices.sort(key=lambda d: -int(d.get("storage", {}).get("used", 0)))
        else:
            devices.sort(key=lambda d: str(d.get("name")))
    return body


class Target:
    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False
        self.ctx: dict[str, str] = {}

    def send(
        self, method: str, path: str, body: Any, auth: str, raw: bytes | None = None
    ) -> requests.Response:
        return self.session.request(
            method,
            self.url + path,
            json=body,
            data=raw,
            headers=auth_header(auth, method, path),
            timeout=30,
            allow_redirects=False,
        )

    def run(self, step: Step) -> dict[str, Any]:
        if step.each is None:
            return self.run_one(step, step.path.format(**self.ctx))
        # one record per item, keyed by the item's manage hostname (ids are random)
        merged: dict[str, Any] = {}
        for item in self.ctx[step.each]:
            rec = self.run_one(step, step.path.format(**self.ctx, each=item))
            tag = (rec.get("body.hostnames.manage") or [item])[0]
            merged.update({f"{tag}:{k}": v for k, v in rec.items()})
        return merged

    def run_one(self, step: Step, path: str) -> dict[str, Any]:
        r = self.send(step.method, path, step.body, step.auth, step.raw)
        deadline = time.monotonic() + 20
        while step.poll and r.status_code == 200 and "X-Pending" in r.headers:
            assert time.monotonic() < deadline, f"{step.name}: still pending"
            time.sleep(0.02)  # polling interval
            r = self.send(step.method, path, step.body, step.auth, step.raw)
        rec: dict[str, Any] = {"status": r.status_code}
        location = r.headers.get("Location")
        if location is not None:
            rec["location"] = ID.sub("<id>", location)
            if location.startswith("/queue/"):
                self.ctx["queue"] = location
            elif location.startswith("/volumes/"):
                self.ctx["vol"] = location.rsplit("/", 1)[1]
            elif location.startswith("/blockvolumes/"):
                self.ctx["block"] = location.rsplit("/", 1)[1]
        if "X-Pending" in r.headers:
            rec["x-pending"] = r.headers["X-Pending"]
        if r.headers.get("Retry-After") is not None:
            rec["retry-after"] = r.headers["Retry-After"]
        ctype = r.headers.get("Content-Type", "")
        rec["content-type"] = ctype
        if "json" in ctype:
            data = r.json()
            if step.capture:
                key, field = step.capture
                self.ctx[key] = data[field][0]
                self.ctx[key + "_all"] = data[field]
            if isinstance(data, dict) and data.get("blockhostingvolume"):
                self.ctx["bhv"] = data["blockhostingvolume"]
            if isinstance(data, dict) and isinstance(data.get("blockvolume"), dict):
                # which nodes export it follows node ids (random): compare them sorted
                data["blockvolume"]["hosts"] = sorted(data["blockvolume"].get("hosts") or [])
            _flatten(_devices_by_name(_mount_stable(data)), "body", rec)
        else:
            rec["body"] = _norm_text(r.text)
        return rec


def run_script(url: str, script: list[Step] | None = None) -> dict[str, dict[str, Any]]:
    target = Target(url)
    if script is not None:  # it needs the cluster id
        target.run(Step("cluster-list", "GET", "/clusters", capture=("cluster", "clusters")))
    return {step.name: target.run(step) for step in (SCRIPT if script is None else script)}


def _names(script: list[Step]) -> list[str]:
    return [step.name for step in script]


# -- the peers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fresh_real_heketi(real_peers: Peers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Heketi of its own: the script needs an empty volume list."""
    workdir: Path = tmp_path_factory.mktemp("heketi-differential")
    topology = default_topology(nodes=NODES, devices=DEVICES)
    with start_heketi(real_peers, workdir, topology=topology) as heketi:
        yield heketi.url


def make_twin_simulator() -> HeketiSimulator:
    """A simulator with the real peer's topology, keys and storage addresses."""
    sim = HeketiSimulator(
        admin_key=HEKETI_ADMIN_KEY, user_key=HEKETI_USER_KEY, nodes=0, seed=11,
        block_hosting_volume_size=BLOCK_HOSTING_GIB,
    )  # fmt: skip
    (cluster,) = sim.cluster_ids()
    topo = default_topology(nodes=NODES, devices=DEVICES)["clusters"][0]["nodes"]
    for n in topo:
        node = n["node"]
        node_id = sim.add_node(
            cluster,
            zone=node["zone"],
            manage=node["hostnames"]["manage"][0],
            storage=node["hostnames"]["storage"][0],
        )
        for device in n["devices"]:
            sim.add_device(node_id, size_gb=DEVICE_GB, name=device["name"])
    return sim


@pytest.fixture
def twin_simulator() -> Iterator[str]:
    with make_twin_simulator() as sim:
        yield sim.url


def test_simulator_matches_real_heketi(fresh_real_heketi: str, twin_simulator: str) -> None:
    real = run_script(fresh_real_heketi)
    sim = run_script(twin_simulator)
    check_against_allowlist(differences(_names(SCRIPT), sim, real), ALLOWLIST)


@pytest.fixture
def fresh_real_heketi_for_block(
    real_peers: Peers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    workdir: Path = tmp_path_factory.mktemp("heketi-differential-block")
    topology = default_topology(nodes=NODES, devices=DEVICES)
    with start_heketi(real_peers, workdir, topology=topology) as heketi:
        yield heketi.url


def test_simulator_block_volumes_match_real_heketi(
    fresh_real_heketi_for_block: str, twin_simulator: str
) -> None:
    real = run_script(fresh_real_heketi_for_block, BLOCK_SCRIPT)
    sim = run_script(twin_simulator, BLOCK_SCRIPT)
    check_against_allowlist(differences(_names(BLOCK_SCRIPT), sim, real), BLOCK_ALLOWLIST)
    # What the provisioner relies on, seen on the real one too.
    info = real["block-info"]
    assert info["body.name"] == "diffblock" and info["body.hacount"] == 3
    assert len(info["body.blockvolume.hosts"]) == 3 and info["body.blockvolume.lun"] == 0

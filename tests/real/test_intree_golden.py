"""Golden comparison with the in-tree provisioner: the same claim, in a class with the
same parameters, provisioned once by kube-controller-manager 1.25's in-tree
``kubernetes.io/glusterfs`` provisioner and once by ours (``gluster.org/heketi``, our
controller as its own process under the RBAC of ``manifests/``), against the same
real Heketi; then deleted by each.

Compared field by field, after replacing what differs by construction (claim uid and
namespace, class name, Heketi volume id, provisioner name, the Heketi URL): the PV,
the Endpoints, the Service, the claim after binding, the events on the claim, the
volume create request that reached Heketi (recorded by a proxy in front of it) and
Heketi's volume info. After delete: what each leaves behind.

A difference is either expected, listed in ``EXPECTED`` with its reason and in the
compatibility table of docs/migration.md, or a bug of ours: then the case asserts the
in-tree behaviour and is marked ``xfail(strict=True)`` naming the fields.

One Kubernetes 1.25 stack, two Heketis (JWT auth on; and off, for
``restauthenabled: "false"``), every claim of every case created at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from testbeds.harness.controller import start_controller
from testbeds.peers import (
    HEKETI_ADMIN_KEY,
    Peers,
    RealHeketi,
    RealKube,
    audit_writes,
    default_topology,
    start_heketi,
    start_kube,
    wait_for,
)

from . import intree as it

pytestmark = pytest.mark.timeout(300)

NS = {"intree": "golden-intree", "ours": "golden-ours"}
PROVISIONER = {"intree": it.INTREE, "ours": it.OURS}
CLASS_PREFIX = {"intree": "gi-", "ours": "go-"}
SECRET_NS, SECRET_NAME = "golden-secrets", "heketi-key"
AUTH_IPS = tuple(f"192.0.2.{i}" for i in range(11, 17))  # 6 nodes: disperse 4+2 needs 6
NOAUTH_IPS = ("192.0.2.21", "192.0.2.22", "192.0.2.23")
LONG_NAME = "claim-with-a-name-of-sixty-three-characters-0123456789abcdefghi"
LONGER_NAME = "a-claim-name-longer-than-a-label-value-may-be-" + "0123456789" * 5
assert len(LONG_NAME) == 63 and len(LONGER_NAME) == 96
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@dataclass(frozen=True)
class Case:
    id: str
    params: Mapping[str, str] = field(default_factory=dict)
    claim: Mapping[str, Any] = field(default_factory=dict)  # make_claim keywords
    reclaim_policy: str = "Delete"
    mount_options: tuple[str, ...] = ()
    heketi: str = "auth"  # or "noauth"
    beta_annotation: bool = False  # class named by the beta annotation, not the spec
    claim_name: str = ""
    # non-empty: ours differs from in-tree in a way that is a bug (xfail strict), when
    # provisioning (bug) or deleting (delete_bug); the text names the fields
    bug: str = ""
    delete_bug: str = ""

    @property
    def name(self) -> str:
        return self.claim_name or self.id


CASES = [
    Case("defaults"),
    Case("replicate-2", {"volumetype": "replicate:2"}),
    Case("replicate-no-count", {"volumetype": "replicate"}),
    Case("disperse-4-2", {"volumetype": "disperse:4:2"}, claim={"size": "4Gi"}),
    Case("distribute-none", {"volumetype": "none"}),
    Case("volumeoptions", {"volumeoptions": "client.ssl on,server.ssl on"}),
    Case("volumenameprefix", {"volumenameprefix": "dept-a"}),
    Case("customepnameprefix", {"customepnameprefix": "gluster-custom"}),
    Case("clusterid", {"clusterid": "<cluster>"}),
    Case("gid-range", {"gidMin": "40000", "gidMax": "40010"}),
    Case("snapfactor", {"snapfactor": "1.5"}),
    Case(
        "restauth-off",
        # user and Secret still named: with auth off both are ignored
        {"restauthenabled": "false"},
        heketi="noauth",
    ),
    Case("restuserkey", {"restuserkey": HEKETI_ADMIN_KEY, "secretName": "", "secretNamespace": ""}),
    Case("retain-mountoptions", reclaim_policy="Retain", mount_options=("log-level=DEBUG",)),
    Case(
        "rwx-rox-rounded",
        claim={"size": "1500Mi", "access_modes": ("ReadWriteMany", "ReadOnlyMany")},
    ),
    Case("beta-class-annotation", beta_annotation=True),
    Case("claim-name-63", claim_name=LONG_NAME),
    Case("claim-name-96", claim_name=LONGER_NAME),
]


# -- expected differences -----------------------------------------------------------

Diff = tuple[str, Any, Any]


@dataclass(frozen=True)
class Expected:
    """A difference that is by design: ``matches(path, intree, ours)``; ``reason`` is
    the one in the compatibility table of docs/migration.md."""

    pattern: str  # regex on the dotted path
    reason: str
    check: Callable[[Any, Any], bool] = lambda a, b: True

    def matches(self, d: Diff) -> bool:
        return re.fullmatch(self.pattern, d[0]) is not None and self.check(d[1], d[2])


def _absent(v: Any) -> bool:
    return repr(v) == "<absent>"


def _event_reasons(events: Any) -> list[tuple[str, str]]:
    return [(e[0], e[1]) for e in events] if isinstance(events, list) else []


def _events_expected(intree: Any, ours: Any) -> bool:
    """Ours: the PV controller's ExternalProvisioning (it waits for an external
    provisioner), our Provisioning, then ProvisioningSucceeded; in-tree:
    ProvisioningSucceeded only. Same success message, but the in-tree one names the
    plugin ("... using kubernetes.io/glusterfs"), as the PV controller words it."""
    want_intree = [("Normal", "ProvisioningSucceeded")]
    rest = [r for r in _event_reasons(ours) if r != ("Normal", "ExternalProvisioning")]
    if _event_reasons(intree) != want_intree or rest != [
        ("Normal", "Provisioning"),
        ("Normal", "ProvisioningSucceeded"),
    ]:
        return False
    ok_intree = (
        intree[0][2] == "Successfully provisioned volume pvc-<claim-uid> using <provisioner>"
    )
    ok_ours = next(e for e in ours if e[1] == "ProvisioningSucceeded")[2] == (
        "Successfully provisioned volume pvc-<claim-uid>"
    )
    return bool(ok_intree and ok_ours)


def _same_set(a: Any, b: Any) -> bool:
    def addresses(subsets: Any) -> list[str]:
        return sorted(x["ip"] for s in subsets or [] for x in s.get("addresses", []))

    return addresses(a) == addresses(b) and bool(addresses(a))


def _volume_name(a: Any, b: Any) -> bool:
    """In-tree: no name (Heketi's vol_<id>), or <prefix>_<ns>_<claim>_<random uuid>; ours:
    pvc-<claim uid>, or <prefix>_<ns>_<claim>_<claim uid>."""
    if a in ("vol_<volume-id>", "") and b == "pvc-<claim-uid>":
        return True
    if isinstance(a, str) and isinstance(b, str) and a.endswith("_<random-uuid>"):
        return b == a.replace("_<random-uuid>", "_<claim-uid>")
    return False


EXPECTED = [
    Expected(
        r"pv\.metadata\.annotations\.heketi-provisioner\.gluster\.org/.*",
        "ours records what delete needs (URL, user, Secret, Endpoints name) on the PV",
        lambda a, b: _absent(a) and not _absent(b),
    ),
    Expected(
        r"pv\.metadata\.annotations\.pv\.kubernetes\.io/bound-by-controller",
        "set by the PV controller on PVs it creates itself (in-tree); an external "
        "provisioner's PV arrives pre-bound (claimRef set), as with every external "
        "provisioner",
        lambda a, b: a == "yes" and _absent(b),
    ),
    Expected(
        r"pv\.metadata\.finalizers",
        "ours protects its PVs with external-provisioner.volume.kubernetes.io/finalizer "
        "until the Heketi volume is deleted",
        lambda a, b: (
            sorted([*a, "external-provisioner.volume.kubernetes.io/finalizer"]) == sorted(b)
        ),
    ),
    Expected(
        r"(pv\.spec\.glusterfs\.path|heketi_volume\.name|heketi_request\.name)",
        "fix: volume names derive from the claim uid, so a retry finds the earlier volume",
        _volume_name,
    ),
    Expected(
        r"endpoints\.subsets",
        "same addresses, other order: in-tree keeps Heketi's node order, ours sorts; "
        "the kubelet mounts from one at random and passes all as backup servers",
        _same_set,
    ),
    Expected(r"events", "event reasons of the external-provisioner convention", _events_expected),
]


def classify(diffs: list[Diff]) -> tuple[list[Diff], list[tuple[Diff, str]]]:
    """(unexpected, [(expected difference, reason)])."""
    unexpected, expected = [], []
    for d in diffs:
        rule = next((e for e in EXPECTED if e.matches(d)), None)
        if rule is not None:
            expected.append((d, rule.reason))
        else:
            unexpected.append(d)
    return unexpected, expected


# -- the run ------------------------------------------------------------------------


@dataclass
class Side:
    claim: dict[str, Any]
    pv: dict[str, Any]
    endpoints: dict[str, Any] | None
    service: dict[str, Any] | None
    events: list[dict[str, Any]]
    volume: dict[str, Any]
    request: Any
    replace: dict[str, str]

    def observed(self) -> dict[str, Any]:
        r = self.replace
        claim_meta = self.claim["metadata"]
        return {
            "claim": {
                "annotations": it._substitute(claim_meta.get("annotations", {}), r),
                "finalizers": claim_meta.get("finalizers"),
                "spec": it._substitute(self.claim["spec"], r),
                "status": self.claim["status"],
            },
            "pv": it.normalise_pv(self.pv, r),
            "endpoints": it.normalise_endpoints(self.endpoints, r),
            "service": it.normalise_service(self.service, r),
            "events": it.normalise_events(self.events, r),
            "heketi_volume": it.normalise_volume(self.volume, r),
            "heketi_request": it.normalise_request(self.request, r),
        }


@dataclass
class World:
    kube: RealKube
    heketi: dict[str, RealHeketi]
    proxies: dict[str, Any]
    sides: dict[tuple[str, str], Side]  # (case id, "intree"|"ours")
    controller: Any
    audit_log: Path


def _class_params(case: Case, world_urls: Mapping[str, str], cluster: str) -> dict[str, str]:
    params = {
        "resturl": world_urls[case.heketi],
        "restuser": "admin",
        "secretNamespace": SECRET_NS,
        "secretName": SECRET_NAME,
    }
    for k, v in case.params.items():
        if v == "":
            params.pop(k, None)
        else:
            params[k] = cluster if v == "<cluster>" else v
    return params


def _provision_all(kube: RealKube, urls: Mapping[str, str], cluster: str) -> None:
    it.make_secret(kube, SECRET_NS, SECRET_NAME, {"key": HEKETI_ADMIN_KEY})
    for case in CASES:
        for who in ("intree", "ours"):
            it.make_class(
                kube,
                CLASS_PREFIX[who] + case.id,
                PROVISIONER[who],
                _class_params(case, urls, cluster),
                reclaim_policy=case.reclaim_policy,
                mount_options=case.mount_options,
            )
    for case in CASES:
        for who in ("intree", "ours"):
            body = it.claim_body(case.name, CLASS_PREFIX[who] + case.id, **case.claim)
            if case.beta_annotation:
                del body["spec"]["storageClassName"]
                body["metadata"]["annotations"] = {
                    "volume.beta.kubernetes.io/storage-class": CLASS_PREFIX[who] + case.id
                }
            it.make_namespace(kube, NS[who])
            kube.create(f"/api/v1/namespaces/{NS[who]}/persistentvolumeclaims", body)


def _collect(kube: RealKube, case: Case, who: str, heketi: RealHeketi, check: Any) -> Side:
    ns = NS[who]
    pvc, pv = it.wait_bound(kube, ns, case.name, timeout=90, check=check)
    uid = pvc["metadata"]["uid"]

    # the success event is written after the PV: wait for it too
    def succeeded() -> list[dict[str, Any]] | None:
        events = it.claim_events(kube, ns, uid)
        return events if any(e["reason"] == "ProvisioningSucceeded" for e in events) else None

    events = wait_for(succeeded, 30, f"{who} {case.id}: ProvisioningSucceeded event")
    ep_name = pv["spec"]["glusterfs"]["endpoints"]
    endpoints = it.get_or_none(kube, f"/api/v1/namespaces/{ns}/endpoints/{ep_name}")
    service = it.get_or_none(kube, f"/api/v1/namespaces/{ns}/services/{ep_name}")
    volume_id = pv["metadata"]["annotations"]["gluster.kubernetes.io/heketi-volume-id"]
    volume = it.heketi_volume(heketi, volume_id)
    replace = {
        uid: "<claim-uid>",
        volume_id: "<volume-id>",
        # longest first: the class name contains the case id
        CLASS_PREFIX[who] + case.id: "<class>",
        ns: "<ns>",
        PROVISIONER[who]: "<provisioner>",
        heketi.url: "<resturl>",
    }
    for name in (volume["name"], pv["spec"]["glusterfs"]["path"]):
        m = re.search(rf"_({UUID})$", name)
        if m and m.group(1) != uid:
            replace[m.group(1)] = "<random-uuid>"
    return Side(pvc, pv, endpoints, service, events, volume, None, replace)


@pytest.fixture(scope="module")
def world(real_peers: Peers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    delay_proxy = it.bench_module("delay_proxy")
    tmp: Path = tmp_path_factory.mktemp("golden")
    with (
        start_kube(real_peers, "1.25", tmp / "kube", audit_log=tmp / "audit.log") as kube,
        start_heketi(
            real_peers,
            tmp / "heketi",
            loglevel="warning",
            topology=default_topology(6, storage_ips=AUTH_IPS),
        ) as heketi,
        start_heketi(
            real_peers,
            tmp / "heketi-noauth",
            loglevel="warning",
            auth=False,
            topology=default_topology(3, storage_ips=NOAUTH_IPS),
        ) as noauth,
        delay_proxy.HeketiProxy(heketi.url) as proxy,
        delay_proxy.HeketiProxy(noauth.url) as proxy_noauth,
    ):
        heketis = {"auth": heketi, "noauth": noauth}
        proxies = {"auth": proxy, "noauth": proxy_noauth}
        controller = start_controller(kube, log_path=tmp / "controller.log")
        try:
            _provision_all(kube, {k: p.url for k, p in proxies.items()}, heketi.cluster_ids[0])
            sides = {
                (case.id, who): _collect(
                    kube, case, who, heketis[case.heketi], controller.check_running
                )
                for case in CASES
                for who in ("intree", "ours")
            }
            requests = {}
            for p in proxies.values():
                requests.update(delay_proxy.created_volumes(p.records()))
            for side in sides.values():
                vid = side.volume["id"]
                side.request = requests[vid].body if vid in requests else None
            yield World(kube, heketis, proxies, sides, controller, tmp / "audit.log")
        finally:
            controller.stop()
            forbidden = controller.forbidden_lines()
            assert not forbidden, "controller refused by RBAC:\n" + "\n".join(forbidden[:10])


def _report(unexpected: list[Diff]) -> str:
    return "\n".join(f"  {p}: in-tree {a!r} | ours {b!r}" for p, a, b in unexpected)


def _diffs(world: World, case: Case) -> list[Diff]:
    intree = world.sides[case.id, "intree"].observed()
    ours = world.sides[case.id, "ours"].observed()
    return it.differences(intree, ours)


def _cases(bug: Callable[[Case], str]) -> list[Any]:
    """CASES as parameters; a case whose ``bug(case)`` is non-empty is xfail(strict)."""
    return [
        pytest.param(
            c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=bug(c))] if bug(c) else []
        )
        for c in CASES
    ]


@pytest.mark.parametrize("case", _cases(lambda c: c.bug))
def test_provisions_like_intree(world: World, case: Case) -> None:
    unexpected, _ = classify(_diffs(world, case))
    assert not unexpected, f"{case.id}: differences not in the compatibility table:\n" + _report(
        unexpected
    )


# -- delete -------------------------------------------------------------------------


def _what_is_left(world: World, case: Case, who: str) -> dict[str, Any]:
    side = world.sides[case.id, who]
    ns = NS[who]
    ep = side.pv["spec"]["glusterfs"]["endpoints"]
    pv = it.get_or_none(world.kube, f"/api/v1/persistentvolumes/{side.pv['metadata']['name']}")
    heketi = world.heketi[case.heketi]
    return {
        "pv": pv["status"].get("phase") if pv else None,
        "heketi_volume": side.volume["id"] in it.heketi_volume_ids(heketi),
        "endpoints": it.get_or_none(world.kube, f"/api/v1/namespaces/{ns}/endpoints/{ep}")
        is not None,
        "service": it.get_or_none(world.kube, f"/api/v1/namespaces/{ns}/services/{ep}") is not None,
    }


@pytest.fixture(scope="module")
def deleted(world: World) -> dict[tuple[str, str], dict[str, Any]]:
    """Every claim deleted; once every PV is gone (reclaim policy Delete) or Released
    (Retain), what is left of each."""
    kube = world.kube
    for case in CASES:
        for who in ("intree", "ours"):
            kube.request(
                "DELETE", f"/api/v1/namespaces/{NS[who]}/persistentvolumeclaims/{case.name}"
            )

    waiting: list[str] = []

    def settled() -> bool:
        waiting.clear()
        for (cid, who), side in world.sides.items():
            name = side.pv["metadata"]["name"]
            pv = it.get_or_none(kube, f"/api/v1/persistentvolumes/{name}")
            retain = side.pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
            if pv is None or (retain and pv["status"]["phase"] == "Released"):
                continue
            if it.failed_delete_events(kube, name):
                continue  # a failed delete is a result too (it is retried, though)
            waiting.append(f"{cid}/{who}: {name} {pv['status'].get('phase')}")
        return not waiting

    try:
        wait_for(settled, 90, "every PV deleted or Released", check=world.controller.check_running)
    except TimeoutError as e:
        raise AssertionError(f"{e}; still waiting for: {waiting}") from None

    def left() -> dict[tuple[str, str], dict[str, Any]]:
        return {(c.id, who): _what_is_left(world, c, who) for c in CASES for who in NS}

    # An Endpoints object whose Service is gone may still be on its way out (the
    # endpoints controller of kube-controller-manager deletes it): give it 15 s.
    try:
        return wait_for(
            lambda: (
                lambda now: (
                    now
                    if not any(v["endpoints"] and not v["service"] for v in now.values())
                    else None
                )
            )(left()),
            15,
            "Endpoints without a Service gone",
        )
    except TimeoutError:
        return left()


@pytest.mark.parametrize("case", _cases(lambda c: c.delete_bug))
def test_deletes_like_intree(deleted: dict[tuple[str, str], dict[str, Any]], case: Case) -> None:
    intree, ours = deleted[case.id, "intree"], deleted[case.id, "ours"]
    if case.reclaim_policy == "Delete":
        assert intree == {"pv": None, "heketi_volume": False, "endpoints": False, "service": False}
    else:
        assert intree == {
            "pv": "Released",
            "heketi_volume": True,
            "endpoints": True,
            "service": True,
        }
    assert ours == intree


def test_who_deletes_the_endpoints_and_service(
    world: World, deleted: dict[tuple[str, str], dict[str, Any]]
) -> None:
    """In-tree deletes only the Service (``deleteEndpointService`` calls
    Services().Delete and nothing else), yet its Endpoints go too, twice covered: the
    API server's Service storage deletes the Endpoints of the same name after deleting
    a Service (``afterDelete``, no request of its own in the audit log), and
    kube-controller-manager's endpoints controller deletes the Endpoints of a Service
    it saw deleted; whichever comes second gets 404. Ours deletes both itself."""
    deleters: dict[tuple[str, str], set[str]] = {}
    for e in audit_writes(world.audit_log):
        ref = e.get("objectRef") or {}
        if (
            e["verb"] == "delete"
            and ref.get("resource") in ("services", "endpoints")
            and ref.get("namespace") in NS.values()
            and e["responseStatus"]["code"] < 300
        ):
            who = "intree" if ref["namespace"] == NS["intree"] else "ours"
            deleters.setdefault((who, ref["resource"]), set()).add(e["user"]["username"])
    sa = "system:serviceaccount:"
    assert deleters.pop(("intree", "endpoints"), set()) <= {sa + "kube-system:endpoint-controller"}
    assert deleters == {
        ("intree", "services"): {sa + "kube-system:persistent-volume-binder"},
        ("ours", "services"): {sa + "heketi-provisioner:heketi-provisioner"},
        ("ours", "endpoints"): {sa + "heketi-provisioner:heketi-provisioner"},
    }
    gone = [k for k, v in deleted.items() if k[1] == "intree" and not v["endpoints"]]
    assert len(gone) == sum(1 for c in CASES if c.reclaim_policy == "Delete")

"""The per-class GID allocator: lowest free, release, exhaustion, threads, rebuild."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest

from provisioner.gluster.gid import GidAllocator, GidExhausted, gid_from_pv


def test_lowest_free_first_and_per_class() -> None:
    alloc = GidAllocator()
    assert [alloc.allocate("gold", 2000, 2010) for _ in range(3)] == [2000, 2001, 2002]
    assert alloc.allocate("silver", 2000, 2010) == 2000
    assert alloc.used_count("gold") == 3 and alloc.used_count("silver") == 1


def test_release_makes_the_gid_lowest_again() -> None:
    alloc = GidAllocator()
    for _ in range(5):
        alloc.allocate("c", 2000, 3000)
    alloc.release("c", 2002)
    assert not alloc.is_used("c", 2002)
    assert alloc.is_used("c", 2001) and alloc.is_used("c", 2003)
    assert alloc.allocate("c", 2000, 3000) == 2002
    assert alloc.allocate("c", 2000, 3000) == 2005


def test_release_of_unknown_gid_or_class_is_harmless() -> None:
    alloc = GidAllocator()
    alloc.release("nobody", 2000)
    alloc.allocate("c", 2000, 2001)
    alloc.release("c", 2500)
    assert alloc.used_count("c") == 1


def test_exhaustion() -> None:
    alloc = GidAllocator()
    assert alloc.allocate("c", 2000, 2001) == 2000
    assert alloc.allocate("c", 2000, 2001) == 2001
    with pytest.raises(GidExhausted) as info:
        alloc.allocate("c", 2000, 2001)
    assert (info.value.class_name, info.value.gid_min, info.value.gid_max) == ("c", 2000, 2001)
    assert "2000" in str(info.value) and "2001" in str(info.value) and "c" in str(info.value)
    alloc.release("c", 2001)
    assert alloc.allocate("c", 2000, 2001) == 2001


def test_range_changes_stay_inside_the_current_range() -> None:
    alloc = GidAllocator()
    for _ in range(10):
        alloc.allocate("c", 2000, 2100)
    assert alloc.allocate("c", 5000, 6000) == 5000
    assert alloc.allocate("c", 2005, 2100) == 2010
    assert alloc.allocate("c", 2000, 2100) == 2011
    with pytest.raises(GidExhausted):
        alloc.allocate("c", 2003, 2008)


def test_rebuild_from_observed_gids() -> None:
    alloc = GidAllocator()
    for gid in (2000, 2001, 2003, 9999, -1, 2147483647, 2001):
        alloc.observe("c", gid)
    assert not alloc.is_used("c", -1) and not alloc.is_used("c", 2147483647)
    assert alloc.used_count("c") == 4
    assert alloc.allocate("c", 2000, 2147483646) == 2002
    assert alloc.allocate("c", 2000, 2147483646) == 2004
    # Out-of-range GIDs are remembered: widening the range must not reuse them.
    assert alloc.allocate("c", 9999, 10000) == 10000


def test_top_of_heketi_range() -> None:
    alloc = GidAllocator()
    assert alloc.allocate("c", 2147483646, 2147483646) == 2147483646
    with pytest.raises(GidExhausted):
        alloc.allocate("c", 2147483646, 2147483646)


def test_matches_a_naive_model_under_random_operations() -> None:
    rng = random.Random(1234)
    alloc, used = GidAllocator(), set()
    for _ in range(3000):
        low = rng.randint(2000, 2050)
        high = low + rng.randint(0, 60)
        if rng.random() < 0.6:
            free = [g for g in range(low, high + 1) if g not in used]
            if free:
                assert alloc.allocate("c", low, high) == free[0]
                used.add(free[0])
            else:
                with pytest.raises(GidExhausted):
                    alloc.allocate("c", low, high)
        elif rng.random() < 0.5:
            gid = rng.randint(1990, 2120)
            alloc.observe("c", gid)
            used.add(gid)
        else:
            gid = rng.randint(1990, 2120)
            alloc.release("c", gid)
            used.discard(gid)
        assert alloc.used_count("c") == len(used)
    assert all(alloc.is_used("c", g) == (g in used) for g in range(1980, 2130))


def test_many_sequential_allocations_stay_fast() -> None:
    alloc = GidAllocator()
    for gid in range(2000, 202000):
        alloc.observe("c", gid)
    assert alloc.allocate("c", 2000, 2147483646) == 202000
    for _ in range(20000):
        alloc.allocate("c", 2000, 2147483646)
    assert alloc.used_count("c") == 220001


def test_threads_get_unique_gids() -> None:
    alloc = GidAllocator()
    results: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        mine = [alloc.allocate("c", 2000, 100000) for _ in range(500)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4000
    assert sorted(results) == list(range(2000, 6000))


def pv(annotations: Any) -> dict[str, Any]:
    return {"metadata": {"name": "pv", "annotations": annotations}}


@pytest.mark.parametrize(
    ("annotations", "gid"),
    [
        ({"pv.beta.kubernetes.io/gid": "2000"}, 2000),
        ({"pv.beta.kubernetes.io/gid": " 40001 "}, 40001),
        ({"pv.beta.kubernetes.io/gid": "2147483646"}, 2147483646),
        ({"pv.beta.kubernetes.io/gid": "2147483647"}, None),
        ({"pv.beta.kubernetes.io/gid": "-5"}, None),
        ({"pv.beta.kubernetes.io/gid": "abc"}, None),
        ({"pv.beta.kubernetes.io/gid": ""}, None),
        ({"pv.beta.kubernetes.io/gid": "2e3"}, None),
        ({"pv.beta.kubernetes.io/gid": "\u0661\u0662"}, None),
        ({"pv.beta.kubernetes.io/gid": "9" * 400}, None),
        ({"pv.beta.kubernetes.io/gid": 2000}, None),
        ({}, None),
        (None, None),
        ("garbage", None),
    ],
)
def test_gid_from_pv(annotations: Any, gid: int | None) -> None:
    assert gid_from_pv(pv(annotations)) == gid


def test_gid_from_pv_without_metadata() -> None:
    assert gid_from_pv({}) is None


@pytest.mark.parametrize(
    "text",
    ["٢٠٠٠", "2_000", "+2000", "-2000", " ", "", "2000.0", "0x7d0", "\uff12\uff10\uff10\uff10",
     "99999999999"],
)  # fmt: skip
def test_only_plain_ascii_digits_are_a_gid(text: str) -> None:
    """``int()`` takes most of these; a GID spelled so was written by neither us nor
    the in-tree provisioner, and must not name (and so share) another volume's GID."""
    from provisioner.gluster.gid import parse_gid

    assert parse_gid(text) is None
    pv = {"metadata": {"annotations": {"pv.beta.kubernetes.io/gid": text}}}
    assert gid_from_pv(pv) is None


def test_plain_digits_are_a_gid() -> None:
    from provisioner.gluster.gid import parse_gid

    assert parse_gid("2000") == 2000
    assert parse_gid(" 2147483646 ") == 2147483646
    assert parse_gid("2147483647") is None  # Heketi refuses it


def test_share_counts_holders_and_the_gid_is_free_after_the_last() -> None:
    """A clone's record (then PV) and its source's PV hold one GID: each holder counts."""
    alloc = GidAllocator()
    alloc.share("c", 2000)  # nobody held it: one holder now, not two
    assert alloc.holders("c", 2000) == 1
    alloc.share("c", 2000)
    alloc.share("c", 2000)
    assert alloc.holders("c", 2000) == 3
    alloc.release("c", 2000)
    alloc.release("c", 2000)
    assert alloc.is_used("c", 2000) and alloc.allocate("c", 2000, 2010) == 2001
    alloc.release("c", 2000)
    assert alloc.holders("c", 2000) == 0
    assert alloc.allocate("c", 2000, 2010) == 2000

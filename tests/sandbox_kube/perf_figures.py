"""Print the sandbox's performance figures (not a test: never passes or fails on time).

Run: ``.venv/bin/python tests/sandbox_kube/perf_figures.py``
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import timeit
from collections.abc import Callable
from typing import Any

import requests

from provisioner.sandbox.kube import KubeSandbox, field_validation
from provisioner.sandbox.kube.resources import by_plural

MERGE = {"Content-Type": "application/merge-patch+json"}


def volume(i: int) -> dict[str, Any]:
    return {
        "metadata": {"name": f"pv-{i:05d}", "labels": {"shard": str(i % 10)}},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "glusterfs": {"endpoints": "glusterfs-dynamic-x", "path": f"vol_{i}"},
            "persistentVolumeReclaimPolicy": "Delete",
            "storageClassName": "gluster",
            "claimRef": {"namespace": "default", "name": f"c{i}", "uid": f"uid-{i}"},
        },
        "status": {"phase": "Bound"},
    }


def median_ms(action: Callable[[], Any], runs: int = 7) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def rate(action: Callable[[int], Any], count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        action(i)
    return count / (time.perf_counter() - start)


def main() -> None:
    with KubeSandbox() as kube:
        start = time.perf_counter()
        kube.preload("persistentvolumes", [volume(i) for i in range(10_000)])
        print(f"preload 10k PVs: {time.perf_counter() - start:.2f} s")
        session = requests.Session()
        url = f"{kube.url}/api/v1/persistentvolumes"
        start = time.perf_counter()
        size = len(session.get(url).content)
        print(f"first list of 10k PVs (serializes every object): "
              f"{(time.perf_counter() - start) * 1000:.0f} ms")  # fmt: skip
        print(f"list 10k PVs over HTTP: {median_ms(lambda: session.get(url).content):.0f} ms "
              f"median ({size / 1e6:.1f} MB)")  # fmt: skip
        selected = f"{url}?labelSelector=shard%3D3"
        print(f"list 10k PVs, label selector keeping 1k: "
              f"{median_ms(lambda: session.get(selected).content):.0f} ms median")  # fmt: skip
        print(f"list 10k PVs in pages of 500: "
              f"{median_ms(lambda: _paged(session, url), runs=3):.0f} ms median")  # fmt: skip
        cms = f"{kube.url}/api/v1/namespaces/default/configmaps"

        def create(i: int) -> None:
            body = {"metadata": {"name": f"cm{i}"}, "data": {"a": "b"}}
            session.post(cms, json=body).raise_for_status()

        def patch(i: int) -> None:
            session.patch(
                f"{cms}/cm{i}", json={"data": {"a": "c"}}, headers=MERGE
            ).raise_for_status()

        print(f"creates, one client: {rate(create, 1000):.0f}/s")
        print(f"merge patches, one client: {rate(patch, 1000):.0f}/s")
        received = [0] * 4

        def watcher(k: int) -> None:
            with requests.get(f"{kube.url}/api/v1/configmaps?watch=1&timeoutSeconds=60",
                              stream=True) as response:  # fmt: skip
                for _ in response.iter_lines():
                    received[k] += 1
                    if received[k] >= 2000:
                        return

        threads = [threading.Thread(target=watcher, args=(k,), daemon=True) for k in range(4)]
        for thread in threads:
            thread.start()
        print(f"creates with 4 open watches: {rate(lambda i: create(i + 1000), 1000):.0f}/s")
        for thread in threads:
            thread.join(30)
        print(f"events received by the 4 watches: {received}")
    _field_validation_cost()


def _field_validation_cost(runs: int = 20_000) -> None:
    """What server-side field validation adds to one PV write, in process."""
    rt = by_plural("persistentvolumes")
    raw = json.dumps(volume(1)).encode()
    obj = field_validation.parse(raw)

    def per_call_us(action: Callable[[], Any]) -> float:
        return timeit.timeit(action, number=runs) / runs * 1e6

    plain = per_call_us(lambda: json.loads(raw))
    tracked = per_call_us(lambda: field_validation.parse(raw))
    walk = per_call_us(lambda: field_validation.problems(rt, obj))
    print(
        f"field validation of a {len(raw)}-byte PV: parse {tracked:.1f} us (plain json.loads "
        f"{plain:.1f} us) + unknown-field walk {walk:.1f} us"
    )


def _paged(session: requests.Session, url: str) -> None:
    token = ""
    while True:
        page = session.get(url, params={"limit": 500, "continue": token}).json()
        token = page["metadata"].get("continue", "")
        if not token:
            return


if __name__ == "__main__":
    main()

"""``faults.hold_next_write``: stop a client at an exact write, then let it go on."""

from __future__ import annotations

import threading

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from provisioner.sandbox.kube import KubeSandbox


def _in_thread(call: object) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())  # type: ignore[operator]
        except Exception as exc:  # an ApiException, or no answer when the server stops
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_hold_before_effect_waits_then_applies(
    kube: KubeSandbox, core: client.CoreV1Api, bodies
) -> None:
    hold = kube.faults.hold_next_write("persistentvolumeclaims", verbs={"create"})
    thread, outcome = _in_thread(
        lambda: core.create_namespaced_persistent_volume_claim("default", bodies.claim("held"))
    )
    assert hold.wait_reached(10)
    assert kube.get_object("persistentvolumeclaims", "default", "held") is None
    hold.release()
    thread.join(10)
    assert kube.get_object("persistentvolumeclaims", "default", "held") is not None
    assert not isinstance(outcome[0], ApiException)


def test_hold_released_without_proceeding_applies_nothing(kube, core, bodies) -> None:
    hold = kube.faults.hold_next_write("persistentvolumeclaims")
    thread, outcome = _in_thread(
        lambda: core.create_namespaced_persistent_volume_claim("default", bodies.claim("no"))
    )
    assert hold.wait_reached(10)
    hold.release(proceed=False)
    thread.join(10)
    assert isinstance(outcome[0], ApiException) and outcome[0].status == 503
    assert kube.get_object("persistentvolumeclaims", "default", "no") is None


def test_hold_after_effect_applies_first(kube: KubeSandbox, core, bodies) -> None:
    hold = kube.faults.hold_next_write("persistentvolumeclaims", after_effect=True)
    thread, _ = _in_thread(
        lambda: core.create_namespaced_persistent_volume_claim("default", bodies.claim("done"))
    )
    assert hold.wait_reached(10)
    assert kube.get_object("persistentvolumeclaims", "default", "done") is not None
    assert thread.is_alive()  # the answer is what waits
    hold.release()
    thread.join(10)
    assert not thread.is_alive()


def test_hold_matches_only_its_verbs_and_clear_releases(kube, core, bodies) -> None:
    hold = kube.faults.hold_next_write("persistentvolumeclaims", verbs={"delete"})
    core.create_namespaced_persistent_volume_claim("default", bodies.claim("free"))
    assert not hold.reached.is_set()
    kube.faults.clear()
    core.delete_namespaced_persistent_volume_claim("free", "default")  # not held any more
    assert not hold.reached.is_set()


@pytest.mark.parametrize("after_effect", [False, True])
def test_stopping_the_server_ends_a_hold(after_effect: bool, bodies) -> None:
    sandbox = KubeSandbox()
    sandbox.start()
    api = client.CoreV1Api(config.new_client_from_config(sandbox.kubeconfig_path))
    hold = sandbox.faults.hold_next_write("persistentvolumeclaims", after_effect=after_effect)
    thread, _ = _in_thread(
        lambda: api.create_namespaced_persistent_volume_claim("default", bodies.claim("x"))
    )
    assert hold.wait_reached(10)
    sandbox.stop()
    thread.join(15)
    assert not thread.is_alive()

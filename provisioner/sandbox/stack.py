"""Heketi simulator + Kubernetes API sandbox + the controller, in one process.

The controller is wired exactly as ``heketi-provisioner run`` wires it
(``provisioner.app.build_controller``) — from the kubeconfig the sandbox writes,
over loopback HTTP — so what works here works the same against a real cluster.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace

from provisioner.app import build_controller
from provisioner.config import Settings
from provisioner.controller.loop import Controller
from provisioner.k8s.kubeapi import KubeAPI
from provisioner.sandbox.heketi import HeketiSimulator
from provisioner.sandbox.kube import KubeSandbox

SANDBOX_BLOCK_HOSTING_GIB = 100
"""Size of each block-hosting volume the sandbox's Heketi creates for block volumes."""


@dataclass
class StackOptions:
    kubeconfig_out: str = "./sandbox.kubeconfig"
    kube_port: int = 0
    kube_version: str = "1.25.16"
    heketi_port: int = 0
    heketi_admin_key: str | None = None
    heketi_latency: float = 0.0
    heketi_max_inflight: int = 8
    with_controller: bool = True
    settings: Settings = field(default_factory=Settings)


class SandboxStack:
    """Start with ``start()`` (or ``with``); ``stop()`` tears down in reverse order."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        # A fresh random key per run unless the user chose one: nothing to leak
        # from a previous run, and nothing to print.
        self.admin_key_generated = options.heketi_admin_key is None
        self.admin_key = options.heketi_admin_key or secrets.token_urlsafe(24)
        self.heketi = HeketiSimulator(
            port=options.heketi_port,
            admin_key=self.admin_key,
            latency=options.heketi_latency,
            max_inflight=options.heketi_max_inflight,
            # The sandbox's devices (3 nodes x 2 x 500 GiB) cannot hold Heketi's
            # default 1100 GiB block-hosting volume.
            block_hosting_volume_size=SANDBOX_BLOCK_HOSTING_GIB,
        )
        self.kube = KubeSandbox(
            port=options.kube_port,
            version=options.kube_version,
            kubeconfig_path=options.kubeconfig_out,
        )
        self.controller: Controller | None = None
        self.kube_api: KubeAPI | None = None

    @property
    def heketi_url(self) -> str:
        return self.heketi.url

    @property
    def kubeconfig_path(self) -> str:
        assert self.kube.kubeconfig_path is not None
        return self.kube.kubeconfig_path

    def start(self) -> None:
        """Start all three; if one fails, stop those already running and re-raise."""
        self.heketi.start()
        try:
            self.kube.start()
            if self.options.with_controller:
                self._start_controller()
        except BaseException:
            self.stop()
            raise

    def _start_controller(self) -> None:
        settings = replace(self.options.settings, kubeconfig=self.kubeconfig_path)
        self.controller = build_controller(settings)
        self.kube_api = self.controller.kube
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop(grace=5.0)
        self.kube.stop()
        self.heketi.stop()

    def __enter__(self) -> SandboxStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

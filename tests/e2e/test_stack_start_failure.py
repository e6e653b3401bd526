"""A stack that cannot start leaves nothing running behind it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from provisioner.sandbox.stack import SandboxStack, StackOptions


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_failed_start_stops_what_was_already_running(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    stack = SandboxStack(StackOptions(kubeconfig_out=str(not_a_directory / "kubeconfig")))
    with pytest.raises(OSError):
        stack.start()
    assert stack.heketi.port and stack.kube.port
    assert not listening(stack.heketi.port)
    assert not listening(stack.kube.port)

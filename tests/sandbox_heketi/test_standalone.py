"""`python -m provisioner.sandbox.heketi` serves until told to stop."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time

import requests


def _read_url(process: subprocess.Popen[str], deadline: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            line = lines.get(timeout=max(0.0, end - time.monotonic()))
        except queue.Empty:
            break
        if "http://" in line:
            return line[line.index("http://") :].strip()
    raise AssertionError("the simulator did not print its URL in time")


def test_module_serves_hello_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "provisioner.sandbox.heketi", "--port", "0",
         "--admin-key", "standalone-admin-key-0123456789abcdef", "--nodes", "4", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        url = _read_url(process, deadline=20)
        assert url.startswith("http://127.0.0.1:")
        hello = requests.get(url + "/hello", timeout=5)
        assert (hello.status_code, hello.text) == (200, "Hello from Heketi")
        assert requests.get(url + "/clusters", timeout=5).status_code == 401
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_module_requires_a_key_unless_auth_is_disabled() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "provisioner.sandbox.heketi", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--admin-key is required" in result.stderr

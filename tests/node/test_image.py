"""Our image as the node runs it: what its base offers the Dockerfile (what
``python:3.11-slim`` offers: ``python`` >= 3.11 and ``pip`` on PATH, installing into
the image), our package installed by that pip, and nothing of the build host in it."""

from __future__ import annotations

import re

from testbeds.node import Node, images

from .kubectl import NodeKubectl, pod

SCRIPT = """
python --version
pip --version
python -c 'import provisioner, heketi_client, sys; print("site", provisioner.__file__)'
ls /usr/lib/python3*/EXTERNALLY-MANAGED 2>/dev/null && echo PEP668-MARKER || echo NO-MARKER
command -v heketi-provisioner
"""


def test_our_image_offers_python_and_pip_and_holds_our_package(
    node: Node, kubectl: NodeKubectl, namespace: str
) -> None:
    ours = images.our_image()
    kubectl.apply(
        {
            **pod("image", image=ours.ref, command=["sh", "-c", SCRIPT], uid=65532),
            "metadata": {"name": "image", "namespace": namespace},
        }
    )
    done = kubectl.wait_pod_phase("image", namespace, ("Succeeded", "Failed"))
    logs = kubectl.run("logs", "image", "-n", namespace).stdout
    assert done["status"]["phase"] == "Succeeded", logs
    version = re.search(r"^Python 3\.(\d+)\.\d+", logs, re.M)
    assert version and int(version.group(1)) >= 11, logs
    assert re.search(r"^pip \d+", logs, re.M), logs
    # pip installed into the image (no PEP 668 refusal), where the console script is
    assert "site /usr/local/lib/python3" in logs, logs
    assert "NO-MARKER" in logs, logs
    assert "/usr/local/bin/heketi-provisioner" in logs, logs


def test_the_stamp_records_size_and_layers() -> None:
    stamp = images.our_image().stamp() or {}
    assert stamp.get("layers") == 2, stamp  # the base's one, and the Dockerfile's
    assert 50e6 < int(stamp.get("size_bytes") or 0) < 1e9, stamp
    assert images.check() == []  # nothing stale: the node ran what the sources make

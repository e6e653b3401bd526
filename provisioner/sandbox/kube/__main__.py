"""``python -m provisioner.sandbox.kube``: serve the sandbox until interrupted."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from provisioner.observability import configure_logging

from ..serving import serve_until_stopped
from .sandbox import KubeSandbox


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provisioner.sandbox.kube")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6443)
    parser.add_argument("--kubeconfig-out", default=None, help="where to write the kubeconfig")
    parser.add_argument("--version", default="1.25.0", help="Kubernetes version to report")
    parser.add_argument("--token", default=None, help="require this bearer token")
    parser.add_argument("--watch-cache-size", type=int, default=1000)
    args = parser.parse_args(argv)
    configure_logging("auto", "warning", stream=sys.stderr)  # stdout carries the banner
    kube = KubeSandbox(
        host=args.host,
        port=args.port,
        version=args.version,
        token=args.token,
        kubeconfig_path=args.kubeconfig_out,
        watch_cache_size=args.watch_cache_size,
    )
    return serve_until_stopped(
        kube.start, kube.stop, lambda url: [url, f"kubeconfig: {kube.kubeconfig_path}"]
    )


if __name__ == "__main__":
    sys.exit(main())

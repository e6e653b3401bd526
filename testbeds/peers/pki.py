"""A throw-away PKI made with the openssl command: the CA, the API server's serving
certificate, client certificates, the service-account key pair, and kubeconfigs."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

# Client certificates every cluster of the beds gets: (subject, extended key usage,
# subjectAltName). The API server's serving names cover loopback and the in-cluster
# "kubernetes" Service name; a bed that serves on another address adds its own.
DEFAULT_LEAVES: Mapping[str, tuple[str, str, str]] = {
    "apiserver": (
        "/CN=kube-apiserver",
        "serverAuth",
        "IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes.default.svc",
    ),
    "admin": ("/O=system:masters/CN=real-peers-admin", "clientAuth", ""),
    "kcm": ("/CN=system:kube-controller-manager", "clientAuth", ""),
}


def node_leaves(
    node_name: str, node_ip: str, service_ip: str = "10.0.0.1"
) -> dict[str, tuple[str, str, str]]:
    """What a cluster with a kubelet needs besides ``DEFAULT_LEAVES``: the API server
    serving on ``node_ip`` too (and on the ``kubernetes`` Service's ``service_ip``,
    which pods dial), the kubelet's client certificate as ``system:node:<name>`` in
    ``system:nodes`` (what the Node authorizer and NodeRestriction judge), the
    kubelet's serving certificate for ``node_ip``, the API server's client certificate
    towards the kubelet, and kube-proxy's and kube-scheduler's identities."""
    return {
        "apiserver": (
            "/CN=kube-apiserver",
            "serverAuth",
            f"IP:127.0.0.1,DNS:localhost,IP:{node_ip},IP:{service_ip},"
            "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,"
            "DNS:kubernetes.default.svc.cluster.local",
        ),
        "kubelet": (f"/O=system:nodes/CN=system:node:{node_name}", "clientAuth", ""),
        "kubelet-serving": (
            f"/O=system:nodes/CN=system:node:{node_name}",
            "serverAuth",
            f"IP:{node_ip},DNS:{node_name}",
        ),
        # kubeadm's identity for this client: the API server's calls to the kubelet
        # (logs, exec, port-forward) under the kubelet's webhook authorization
        "apiserver-kubelet-client": (
            "/O=system:masters/CN=kube-apiserver-kubelet-client",
            "clientAuth",
            "",
        ),
        "kube-proxy": ("/CN=system:kube-proxy", "clientAuth", ""),
        "kube-scheduler": ("/CN=system:kube-scheduler", "clientAuth", ""),
    }


def _openssl(*args: str, cwd: Path) -> None:
    out = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {out.stderr.strip()}")


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"


def make_pki(d: Path, leaves: Mapping[str, tuple[str, str, str]] = DEFAULT_LEAVES) -> Pki:
    """A CA, one certificate per entry of ``leaves`` (name -> subject, extended key
    usage, subjectAltName), and the service-account key pair."""
    d.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "3",
        "-subj",
        "/CN=heketi-provisioner-real-peers-ca",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        cwd=d,
    )
    for name, (subject, usage, sans) in leaves.items():
        issue_leaf(d, name, subject, usage, sans)
    _openssl(
        "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "sa.key", cwd=d
    )
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)
    return Pki(d)


def issue_leaf(d: Path, name: str, subject: str, usage: str, sans: str = "") -> None:
    """``<name>.key`` and ``<name>.crt`` signed by the CA in ``d``."""
    ext = d / f"{name}.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,"
        f"keyEncipherment\nextendedKeyUsage={usage}\n"
        + (f"subjectAltName={sans}\n" if sans else "")
    )
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        subject,
        cwd=d,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        f"{name}.crt",
        "-days",
        "3",
        "-extfile",
        f"{name}.ext",
        cwd=d,
    )


def write_kubeconfig(
    path: Path,
    server: str,
    ca: Path,
    user: str,
    *,
    cert: Path | None = None,
    key: Path | None = None,
    token: str | None = None,
    namespace: str = "default",
) -> Path:
    creds: dict[str, str] = {}
    if cert and key:
        creds = {"client-certificate": str(cert), "client-key": str(key)}
    if token:
        creds["token"] = token
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "real", "cluster": {"server": server, "certificate-authority": str(ca)}}
        ],
        "users": [{"name": user, "user": creds}],
        "contexts": [
            {"name": user, "context": {"cluster": "real", "user": user, "namespace": namespace}}
        ],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path

"""The kubectl differential's script: each entry a kubectl command line (run with
``--kubeconfig`` and ``--cache-dir``); ``{name}`` stands for a file the runner writes.

Two entries are not commands: ``(WATCH, args...)`` starts ``kubectl args`` in the
background (a ``get --watch-only`` with a ``--request-timeout``) and waits until its
watch is open; ``(COLLECT,)`` waits for it to end by its timeout and records what it
printed. The commands in between are what it sees.

Objects that kube-controller-manager puts in every namespace (``kube-root-ca.crt``,
the ``default`` ServiceAccount) are kept out of the lists by the kinds and selectors
chosen: they are not emulated (the README's allowlist says so for the API script).
"""

from __future__ import annotations

NS = "kdiff-kubectl"
SA = f"system:serviceaccount:{NS}:auditor"
WATCH = "WATCH"
COLLECT = "COLLECT"

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: kdiff-kubectl
  labels: {{tier: {tier}}}
spec:
  selector: {{app: web}}
  ports:
  - name: http
    port: 80{extra}
  - name: https
    port: {port}
"""
CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  namespace: kdiff-kubectl
data:
  a: "{value}"
"""
FILES = {
    "svc1": SERVICE.format(tier="a", port=443, extra=""),
    "svc2": SERVICE.format(tier="b", port=8443, extra=""),
    "svc3": SERVICE.format(tier="c", port=9443, extra=""),
    "bogus": SERVICE.format(tier="b", port=8443, extra="\n    bogus: 1"),
    "filed": CONFIGMAP.format(name="filed", value="1"),
    "filed2": CONFIGMAP.format(name="filed", value="2"),
}

N = ("-n", NS)

SCRIPT: list[tuple[str, ...]] = [
    # -- typed creates (protobuf), apply, errors ----------------------------------------
    ("create", "namespace", NS),
    ("create", "namespace", NS),  # AlreadyExists
    ("create", "secret", "generic", "heketi", *N, "--type=kubernetes.io/glusterfs",
     "--from-literal=key=s3cret"),
    ("create", "configmap", "cm", *N, "--from-literal=a=b"),
    ("create", "serviceaccount", "robot", *N),
    ("apply", "-f", "{svc1}"),
    ("apply", "-f", "{svc2}"),
    ("apply", "-f", "{svc2}"),  # unchanged
    ("apply", "-f", "{bogus}"),  # default validation: strict
    ("apply", "-f", "{bogus}", "--validate=warn"),
    ("get", "secret", "heketi", *N, "-o", "jsonpath={.type} {.data.key}"),
    ("get", "svc", "web", *N, "-o", "jsonpath={.spec.ports[*].port}"),
    ("get", "sa", "robot", *N, "-o", "name"),
    ("delete", "sa", "robot", *N),
    ("get", "sa", "robot", *N),  # NotFound
    # -- RBAC objects (typed creates) and `auth can-i` ----------------------------------
    ("create", "role", "auditor", "--verb=get,list", "--resource=configmaps", *N),
    ("create", "rolebinding", "auditor", "--role=auditor", f"--serviceaccount={NS}:auditor",
     *N),
    ("create", "rolebinding", "broken", "--role=missing", f"--serviceaccount={NS}:auditor",
     *N),
    ("create", "clusterrole", "kdiff-kubectl-pv", "--verb=get", "--resource=persistentvolumes"),
    ("create", "clusterrolebinding", "kdiff-kubectl-pv", "--clusterrole=kdiff-kubectl-pv",
     "--user=kdiff-kubectl-user"),
    ("auth", "can-i", "create", "persistentvolumes"),
    ("auth", "can-i", "*", "*"),
    ("auth", "can-i", "get", "/healthz"),
    ("auth", "can-i", "frobnicate", "widgets"),
    ("auth", "can-i", "list", "configmaps", *N, f"--as={SA}"),
    ("auth", "can-i", "get", "configmaps/cm", *N, f"--as={SA}"),
    ("auth", "can-i", "delete", "configmaps", *N, f"--as={SA}"),
    ("auth", "can-i", "list", "secrets", *N, f"--as={SA}"),
    ("auth", "can-i", "list", "configmaps", "-n", "default", f"--as={SA}"),
    ("auth", "can-i", "get", "/apis", f"--as={SA}"),
    ("auth", "can-i", "get", "/metrics", f"--as={SA}"),
    ("auth", "can-i", "list", "configmaps", *N, f"--as={SA}", "--quiet"),
    ("auth", "can-i", "delete", "configmaps", *N, f"--as={SA}", "--quiet"),
    ("auth", "can-i", "get", "persistentvolumes", "--as=kdiff-kubectl-user"),
    ("auth", "can-i", "--list", *N, f"--as={SA}"),
    ("auth", "can-i", "--list", *N, "--as=kdiff-kubectl-user"),
    ("auth", "can-i", "--list", *N),
    ("get", "configmap", "cm", *N, f"--as={SA}", "-o", "name"),
    ("get", "secrets", *N, f"--as={SA}"),
    ("delete", "configmap", "cm", *N, f"--as={SA}"),
    # -- label, annotate, patch (each patch type) ---------------------------------------
    ("label", "configmap", "cm", *N, "tier=web"),
    ("label", "configmap", "cm", *N, "tier=db"),  # needs --overwrite
    ("label", "configmap", "cm", *N, "tier=db", "--overwrite"),
    ("label", "configmap", "cm", *N, "gone-"),
    ("annotate", "configmap", "cm", *N, "note=hi"),
    ("annotate", "configmap", "cm", *N, "note=bye", "--overwrite"),
    ("patch", "configmap", "cm", *N, "--type=merge", "-p", '{"data":{"m":"1"}}'),
    ("patch", "configmap", "cm", *N, "--type=strategic", "-p", '{"data":{"s":"2"}}'),
    ("patch", "configmap", "cm", *N, "--type=json", "-p",
     '[{"op":"add","path":"/data/j","value":"3"},{"op":"remove","path":"/data/m"}]'),
    ("patch", "configmap", "cm", *N, "--type=json", "-p",
     '[{"op":"test","path":"/data/a","value":"zz"}]'),  # a failed test
    ("patch", "configmap", "cm", *N, "--type=merge", "-p", '{"data":{"s":"2"}}'),  # no change
    ("patch", "configmap", "cm", *N, "--type=merge", "-p", "{not json"),
    ("patch", "configmap", "missing", *N, "--type=merge", "-p", '{"data":{}}'),
    ("get", "configmap", "cm", *N, "-o",
     "jsonpath={.metadata.labels} {.metadata.annotations.note} {.data}"),
    # -- --dry-run=server on every verb ------------------------------------------------
    ("create", "configmap", "dry", *N, "--from-literal=a=b", "--dry-run=server"),
    ("create", "-f", "{filed}", "--dry-run=server"),
    ("apply", "-f", "{svc3}", "--dry-run=server"),
    ("apply", "-f", "{filed}", "--dry-run=server"),
    ("label", "configmap", "cm", *N, "dry=yes", "--dry-run=server"),
    ("annotate", "configmap", "cm", *N, "note=dry", "--overwrite", "--dry-run=server"),
    ("patch", "configmap", "cm", *N, "--type=merge", "-p", '{"data":{"d":"1"}}',
     "--dry-run=server"),
    ("delete", "configmap", "cm", *N, "--dry-run=server"),
    ("delete", "secrets", "--all", *N, "--dry-run=server"),
    ("create", "-f", "{filed}"),
    ("replace", "-f", "{filed2}", "--dry-run=server"),
    ("get", "configmap", "dry", *N),  # NotFound: nothing was written
    ("get", "configmap", "cm", "filed", *N, "-o",
     "jsonpath={range .items[*]}{.metadata.name} {.metadata.labels} {.data}{'\\n'}{end}"),
    ("get", "svc", "web", *N, "-o", "jsonpath={.metadata.labels.tier}"),
    ("get", "secrets", *N, "-o", "name"),
    # -- watch, wait, delete --cascade, delete --all -----------------------------------
    (WATCH, "get", "configmaps", *N, "-l", "watched=yes", "--watch-only",
     "--request-timeout=10s"),
    ("create", "configmap", "w1", *N, "--from-literal=k=v"),
    ("label", "configmap", "w1", *N, "watched=yes"),
    ("patch", "configmap", "w1", *N, "--type=merge", "-p", '{"data":{"k2":"v2"}}'),
    ("delete", "configmap", "w1", *N),
    (COLLECT,),
    ("wait", "--for=jsonpath={.data.a}=b", "configmap/cm", *N, "--timeout=20s"),
    ("wait", "--for=jsonpath={.status.phase}=Active", f"namespace/{NS}", "--timeout=20s"),
    ("wait", "--for=create", "configmap/filed", *N, "--timeout=20s"),
    ("wait", "--for=delete", "configmap/w1", *N, "--timeout=20s"),
    ("wait", "--for=jsonpath={.data.a}=never", "configmap/cm", *N, "--timeout=2s"),
    ("create", "configmap", "fg", *N),
    ("create", "configmap", "orphan", *N),
    ("create", "configmap", "bg", *N),
    ("delete", "configmap", "fg", *N, "--cascade=foreground"),
    ("delete", "configmap", "orphan", *N, "--cascade=orphan"),
    ("delete", "configmap", "bg", *N, "--cascade=background"),
    ("delete", "configmap", "bg", *N, "--cascade=sideways"),
    ("get", "configmaps", "fg", "orphan", "bg", *N, "--ignore-not-found"),
    ("create", "secret", "generic", "extra", *N, "--from-literal=k=v"),
    ("delete", "secrets", "--all", *N),
    ("get", "secrets", *N),
]  # fmt: skip

"""Remove everything the node bed makes, whether its run stopped cleanly or was killed.

``clean(kube_proxy=...)`` is what ``stop`` runs last and what ``start`` runs first
(a killed run's leftovers), and ``python -m testbeds.node down``. Each step looks at
the machine, not at a record of the run, so it removes what a killed run left:

1. processes: the bed's own (marked, see ``testbeds.harness.processes``) whose
   owner is gone, containerd's shims for the bed's socket, and every process in the
   pods' cgroups (``paths.CGROUP`` in each hierarchy);
2. mounts under the bed's directories (containers' root filesystems, the pods'
   network namespaces, the kubelet's volume mounts), deepest first;
3. iptables: what kube-proxy wrote (``kube-proxy --cleanup``), then the bed's own
   chain; the links (node, bridge, veths);
4. the shims' sockets, the cgroups, the sysctls the kubelet and kube-proxy changed
   (restored from ``saved-sysctls.json``), the pod logs, and the directories.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from ..harness.processes import reap_leftovers
from . import network, paths

# What the kubelet (protectKernelDefaults off), the CNI bridge plugin and kube-proxy
# (iptables mode) set on the host: saved before the bed starts, restored by clean().
SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/bridge/bridge-nf-call-iptables",
)


def _saved_sysctls() -> Path:
    return paths.root() / "saved-sysctls.json"


def save_sysctls() -> None:
    """Record the host's values, unless a killed run already did (those are the
    host's own; the current ones may be the kubelet's)."""
    target = _saved_sysctls()
    if target.exists():
        return
    values = {}
    for key in SYSCTLS:
        with contextlib.suppress(OSError):
            values[key] = (Path("/proc/sys") / key).read_text().strip()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(values, indent=1))


def restore_sysctls() -> list[str]:
    target = _saved_sysctls()
    try:
        values = json.loads(target.read_text())
    except (OSError, ValueError):
        return []
    changed = []
    for key, value in values.items():
        path = Path("/proc/sys") / key
        with contextlib.suppress(OSError):
            if path.read_text().strip() != value:
                path.write_text(value)
                changed.append(f"sysctl {key.replace('/', '.')}={value}")
    target.unlink()
    return changed


def _pod_logs_mark(d: Path) -> Path:
    # beside the bed's state, not in the directory: the kubelet's log garbage
    # collector removes whatever in /var/log/pods is not a pod's
    return paths.root() / f"owns{str(d).replace('/', '-')}"


def mark_pod_logs() -> None:
    """Take /var/log/pods for the bed when no one else has it (no other kubelet)."""
    for d in (paths.POD_LOGS, paths.CONTAINER_LOG_LINKS):
        if not d.exists():
            d.mkdir(parents=True)
            _pod_logs_mark(d).touch()


# -- processes ------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _shims() -> list[int]:
    """containerd-shim-runc-v2 processes serving the bed's containerd."""
    socket = str(paths.containerd_socket())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            argv = _cmdline(int(entry.name))
            if argv and "containerd-shim" in argv[0] and socket in argv:
                found.append(int(entry.name))
    return found


def _cgroup_dirs() -> Iterator[Path]:
    """Every directory of the bed's cgroup, in every hierarchy, deepest first."""
    if not paths.CGROUP_MOUNT.is_dir():
        return
    for hierarchy in sorted(paths.CGROUP_MOUNT.iterdir()):
        top = hierarchy / paths.CGROUP
        if top.is_dir():
            dirs = [Path(d) for d, _, _ in os.walk(top)]
            yield from sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def _cgroup_pids() -> set[int]:
    pids: set[int] = set()
    for d in _cgroup_dirs():
        with contextlib.suppress(OSError):
            pids.update(int(p) for p in (d / "cgroup.procs").read_text().split())
    return pids


def kill_pod_processes(deadline: float = 30.0) -> int:
    """SIGKILL every process in the pods' cgroups (and the shims) until none is left."""
    killed: set[int] = set()
    end = time.monotonic() + deadline
    while True:
        pids = _cgroup_pids() | set(_shims())
        if not pids:
            return len(killed)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        if time.monotonic() > end:
            raise RuntimeError(f"pod processes survive SIGKILL: {sorted(pids)}")
        time.sleep(0.1)  # the kernel needs a moment to reap SIGKILLed processes


# -- mounts ---------------------------------------------------------------------------


def bed_mounts() -> list[str]:
    """Mount points under the bed's directories, deepest first."""
    roots = [str(paths.root()), str(paths.RUN)]
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if any(point == r or point.startswith(r + "/") for r in roots):
                found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_all() -> list[str]:
    gone = []
    for _ in range(5):  # stacked mounts: one pass may uncover another
        points = bed_mounts()
        if not points:
            break
        for point in points:
            out = subprocess.run(["umount", point], capture_output=True, text=True, timeout=60)
            if out.returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True, timeout=60)
            gone.append(f"mount {point}")
    left = bed_mounts()
    if left:
        raise RuntimeError(f"mounts left under the bed's directories: {left}")
    return gone


# -- the rest ---------------------------------------------------------------------------


def _shim_sockets() -> list[Path]:
    """The sockets containerd 1.6's shims made for the bed's tasks:
    /run/containerd/s/<sha256(<containerd address>/<namespace>/<task id>)>."""
    tasks = paths.RUN / "containerd" / "io.containerd.runtime.v2.task"
    found = []
    if tasks.is_dir():
        for ns in tasks.iterdir():
            for task in ns.iterdir() if ns.is_dir() else []:
                key = f"{paths.containerd_socket()}/{ns.name}/{task.name}"
                found.append(paths.SHIM_SOCKETS / hashlib.sha256(key.encode()).hexdigest())
    return found


def kube_proxy_cleanup(kube_proxy: str | None) -> list[str]:
    """kube-proxy's own ``--cleanup``, then what it leaves (its canary chains and
    KUBE-MARK-MASQ): every KUBE-* chain and every rule that jumps to one."""
    before = network.leftover_rules()
    if kube_proxy and any("KUBE-" in r for r in before):
        subprocess.run([kube_proxy, "--cleanup"], capture_output=True, timeout=120)
    network.remove_kube_chains()
    return [f"iptables {r}" for r in before if "KUBE-" in r and r not in network.leftover_rules()]


def clean(kube_proxy: str | None = None) -> list[str]:
    """Remove whatever the bed left on this machine; returns what was removed."""
    done = [f"process {pid}" for pid in reap_leftovers()]
    done += [f"{n} pod process(es) and shim(s)" for n in [kill_pod_processes()] if n]
    sockets = _shim_sockets()
    done += unmount_all()
    done += kube_proxy_cleanup(kube_proxy)
    done += network.tear_down()
    for sock in sockets:
        if sock.exists() or sock.is_symlink():
            sock.unlink()
            done.append(f"shim socket {sock}")
    for d in _cgroup_dirs():
        with contextlib.suppress(OSError):
            d.rmdir()
            done.append(f"cgroup {d}")
    done += restore_sysctls()
    for d in (paths.POD_LOGS, paths.CONTAINER_LOG_LINKS):
        if _pod_logs_mark(d).exists() and d.exists():
            shutil.rmtree(d)
            done.append(f"directory {d}")
    for d in (paths.RUN, paths.root()):
        if d.exists():
            shutil.rmtree(d)
            done.append(f"directory {d}")
    return done


def leftovers() -> list[str]:
    """What ``clean`` would remove (for ``status`` and the tests); empty when clean."""
    found = [f"mount {m}" for m in bed_mounts()]
    found += [f"pod process {p}" for p in sorted(_cgroup_pids())]
    found += [f"shim {p}" for p in _shims()]
    found += [f"iptables {r}" for r in network.leftover_rules()]
    for link in (network.DUMMY, network.BRIDGE):
        if Path(f"/sys/class/net/{link}").exists():
            found.append(f"link {link}")
    found += [f"route blackhole {b}" for b in network.blackholes()]
    found += [f"cgroup {d}" for d in _cgroup_dirs()]
    found += [f"directory {d}" for d in (paths.RUN, paths.root()) if d.exists()]
    return found

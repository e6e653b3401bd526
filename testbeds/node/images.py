"""The node bed's images, built here (no registry can be reached) and cached outside
the clone, rebuilt only when their inputs change, like the peers' binaries.

- ``pause``: the sandbox process of every pod, ``pause/main.go`` built with the local
  Go (standard library only), alone in an image from scratch.
- ``busybox``: Debian's ``busybox-static`` and one symlink per applet, from scratch;
  the image test pods name (``busybox:1.35``, normalised ``docker.io/library/...``).
- ``python-base``: what ``python:3.11-slim`` offers our Dockerfile (``python`` >= 3.11
  and ``pip`` on PATH, installing into the image), made by ``mmdebstrap`` from
  Debian's packages, with Debian's PEP 668 ``EXTERNALLY-MANAGED`` marker removed.
- ``heketi-provisioner``: OUR image, ``buildah bud --pull=never`` of the repository's
  Dockerfile with ``--build-arg BASE_IMAGE=<python-base>``, tagged as the chart's
  default (``heketi-provisioner:<appVersion>``) so that ``helm install`` uses it as is.

Each image leaves a ``docker-archive`` tar (for ``ctr images import``) and a ``stamp``
(JSON: the sha256 of its inputs, size, layers) in ``<cache>/<name>/``. The host's CA
bundle is mounted read-only into the Dockerfile's RUN steps (pip downloads from PyPI)
and never written into an image.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STAMP_FORMAT = 1
DEBIAN_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-pip", "python-is-python3", "ca-certificates", "usr-is-merged")
# What python:3.11-slim leaves out as well: documentation, manuals, translations.
BASE_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")
# The Dockerfile's COPY sources (tests/deploy/test_dockerfile.py keeps them in step).
OUR_IMAGE_INPUTS = (
    "Dockerfile",
    "pyproject.toml",
    "setup.cfg",
    "README.md",
    "heketi_client",
    "provisioner",
)
HOST_CA_DIR = "/etc/ssl/certs"
# Bump when build_base changes in a way its constants above do not show.
BASE_RECIPE = "mmdebstrap essential, no EXTERNALLY-MANAGED, v1"
START = time.monotonic()


class ImageBuildFailed(RuntimeError):
    """A build command failed; the message has its output's tail."""


def log(msg: str) -> None:
    print(f"[images +{time.monotonic() - START:6.1f}s] {msg}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    explicit = os.environ.get("HEKETI_PROVISIONER_IMAGES_DIR")
    if explicit:
        return Path(explicit).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return (Path(base).expanduser() / "heketi-provisioner" / "images").resolve()


def chart_app_version() -> str:
    chart = yaml.safe_load((REPO / "charts" / "heketi-provisioner" / "Chart.yaml").read_text())
    return str(chart["appVersion"])


@dataclass(frozen=True)
class Image:
    name: str  # cache directory
    ref: str  # the normalised name containerd stores and pods resolve to

    @property
    def dir(self) -> Path:
        return cache_root() / self.name

    @property
    def archive(self) -> Path:
        return self.dir / "image.tar"

    def stamp(self) -> dict[str, object] | None:
        try:
            return dict(json.loads((self.dir / "stamp").read_text()))
        except (OSError, ValueError):
            return None


PAUSE = Image("pause", "localhost/hpnode-pause:1")
BUSYBOX = Image("busybox", "docker.io/library/busybox:1.35")
BASE = Image("python-base", "localhost/hpnode-python-base:3.11")


def our_image() -> Image:
    return Image(
        "heketi-provisioner", f"docker.io/library/heketi-provisioner:{chart_app_version()}"
    )


def node_images() -> tuple[Image, ...]:
    """What the node imports into containerd (the base stays in buildah's store)."""
    return (PAUSE, BUSYBOX, our_image())


# -- hashing inputs -------------------------------------------------------------------


def _files(root: Path, names: Iterable[str]) -> Iterator[Path]:
    for name in names:
        path = root / name
        if path.is_dir():
            yield from sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
            )
        else:
            yield path


def inputs_hash(root: Path, names: Iterable[str], *extra: str) -> str:
    h = hashlib.sha256(f"format {STAMP_FORMAT}\n".encode())
    for e in extra:
        h.update(f"== {e}\n".encode())
    for path in _files(root, names):
        h.update(f"== {path.relative_to(root)}\n".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def recipes() -> dict[str, str]:
    """Each image's input hash; an image depends on the base through the base's hash."""
    base = inputs_hash(HERE, [], BASE_RECIPE, DEBIAN_SUITE, *BASE_PACKAGES, *BASE_EXCLUDES)
    busybox_bin = Path("/bin/busybox")
    busybox = hashlib.sha256(
        busybox_bin.read_bytes() if busybox_bin.exists() else b"missing"
    ).hexdigest()
    return {
        PAUSE.name: inputs_hash(HERE / "pause", ["go.mod", "main.go"], PAUSE.ref),
        BUSYBOX.name: inputs_hash(HERE, [], BUSYBOX.ref, busybox),
        BASE.name: base,
        our_image().name: inputs_hash(REPO, OUR_IMAGE_INPUTS, our_image().ref, base),
    }


# -- commands ---------------------------------------------------------------------------


def run(argv: list[str], *, cwd: Path | None = None, timeout: float = 1800) -> str:
    out = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if out.returncode != 0:
        tail = "\n".join((out.stdout + out.stderr).splitlines()[-30:])
        raise ImageBuildFailed(f"{' '.join(argv[:4])} ...: exit {out.returncode}\n{tail}")
    return out.stdout


def buildah(*args: str, timeout: float = 1800) -> str:
    """buildah on a store of its own inside the cache (not /var/lib/containers)."""
    store = cache_root() / "buildah"
    return run(
        [
            "buildah",
            f"--root={store / 'root'}",
            f"--runroot={store / 'run'}",
            "--storage-driver=overlay",
            *args,
        ],
        timeout=timeout,
    )


def _commit_scratch(ref: str, rootfs: Path, config: list[str]) -> None:
    """An image of one layer: the files of ``rootfs``, and ``buildah config`` ``config``."""
    container = buildah("from", "scratch").strip()
    try:
        buildah("copy", container, f"{rootfs}/", "/")
        if config:
            buildah("config", *config, container)
        buildah("commit", "--rm", container, ref)
    except BaseException:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
        raise


def build_pause(work: Path) -> None:
    root = work / "rootfs"
    root.mkdir()
    env = {**os.environ, "CGO_ENABLED": "0", "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"}
    subprocess.run(
        ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", str(root / "pause"), "."],
        cwd=HERE / "pause",
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    _commit_scratch(PAUSE.ref, root, ["--entrypoint", '["/pause"]', "--user", "65535:65535"])


def build_busybox(work: Path) -> None:
    busybox = shutil.which("busybox") or "/bin/busybox"
    if not Path(busybox).exists():
        raise ImageBuildFailed("busybox not found: apt-get install busybox-static")
    root = work / "rootfs"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    for applet in run([busybox, "--list"]).split():
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc").mkdir()
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/tmp:/bin/sh\n"
    )
    (root / "etc" / "group").write_text("root:x:0:\nuser:x:1000:\n")
    for d in ("tmp", "root", "proc", "sys", "dev"):
        (root / d).mkdir(mode=0o1777 if d == "tmp" else 0o755)
    _commit_scratch(BUSYBOX.ref, root, ["--cmd", '["sh"]', "--env", "PATH=/bin"])


def build_base(work: Path) -> None:
    tar = work / "base.tar"
    argv = [
        "mmdebstrap",
        "--mode=root",
        "--variant=essential",
        f"--include={','.join(BASE_PACKAGES)}",
        *(f"--dpkgopt=path-exclude={p}" for p in BASE_EXCLUDES),
        "--dpkgopt=path-include=/usr/share/locale/locale.alias",
        # pip installs into the image, as python:3.11-slim's does (PEP 668 marker off)
        '--customize-hook=rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
        DEBIAN_SUITE,
        str(tar),
    ]
    run(argv, timeout=1800)
    rootfs = work / "rootfs"
    rootfs.mkdir()
    run(["tar", "-C", str(rootfs), "--numeric-owner", "-xpf", str(tar)])
    tar.unlink()
    _commit_scratch(
        BASE.ref,
        rootfs,
        [
            "--env",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--env",
            "LANG=C.UTF-8",
            "--cmd",
            '["python3"]',
        ],
    )


def build_ours(work: Path) -> None:
    """Our Dockerfile, as a user builds it; only the base is ours."""
    image = our_image()
    buildah(
        "bud",
        "--pull=never",
        "--network=host",  # pip fetches the dependencies from PyPI
        f"--volume={HOST_CA_DIR}:{HOST_CA_DIR}:ro",  # ... trusting what the host trusts
        f"--build-arg=BASE_IMAGE={BASE.ref}",
        "--layers=false",
        f"--tag={image.ref}",
        f"--file={REPO / 'Dockerfile'}",
        str(REPO),
    )


BUILDERS = {
    PAUSE.name: (PAUSE, build_pause),
    BUSYBOX.name: (BUSYBOX, build_busybox),
    BASE.name: (BASE, build_base),
}


def _inspect(ref: str) -> dict[str, object]:
    info = json.loads(buildah("inspect", "--type=image", ref))
    return {"id": info["FromImageID"], "layers": len(info["OCIv1"]["rootfs"]["diff_ids"])}


def _layer_bytes(archive: Path) -> int:
    """The image's size unpacked: the sum of its layer tars in a docker-archive."""
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        return sum(tar.getmember(layer).size for layer in manifest[0]["Layers"])


def is_current(image: Image, recipe: str) -> bool:
    stamp = image.stamp()
    if not stamp or stamp.get("hash") != recipe:
        return False
    return image is BASE or image.archive.exists()


def build_one(image: Image, recipe: str, builder: object) -> None:
    t0 = time.monotonic()
    log(f"{image.name}: building {image.ref}")
    image.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"hpnode-{image.name}-", dir=cache_root()) as tmp:
        builder(Path(tmp))  # type: ignore[operator]
    info = _inspect(image.ref)
    stamp: dict[str, object] = {
        "format": STAMP_FORMAT,
        "hash": recipe,
        "ref": image.ref,
        **info,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(time.monotonic() - t0, 1),
    }
    if image is not BASE:
        tmp_archive = image.archive.with_suffix(".tar.tmp")
        tmp_archive.unlink(missing_ok=True)
        buildah("push", image.ref, f"docker-archive:{tmp_archive}:{image.ref}")
        tmp_archive.replace(image.archive)
        stamp["size_bytes"] = _layer_bytes(image.archive)
    (image.dir / "stamp").write_text(json.dumps(stamp, indent=1) + "\n")
    log(f"{image.name}: built in {time.monotonic() - t0:.1f} s ({stamp['layers']} layers)")


def build_all(force: bool = False) -> dict[str, dict[str, object]]:
    """Build what is missing or stale; returns every image's stamp."""
    for tool, package in (("buildah", "buildah"), ("mmdebstrap", "mmdebstrap"), ("go", "Go")):
        if not shutil.which(tool):
            raise ImageBuildFailed(f"{tool} not found (install {package})")
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        want = recipes()
        ours = our_image()
        plan = [*BUILDERS.values(), (ours, build_ours)]
        for image, builder in plan:
            if not force and is_current(image, want[image.name]):
                log(f"{image.name}: cached ({image.ref})")
                continue
            if image is ours and not is_current(BASE, want[BASE.name]):
                raise ImageBuildFailed("the base image is not built")
            build_one(image, want[image.name], builder)
        # the images a rebuild replaced (untagged now): keep the store from growing
        buildah("rmi", "--prune")
    return {image.name: image.stamp() or {} for image, _ in plan}


def check() -> list[str]:
    """Names of images that are missing or stale (builds nothing)."""
    want = recipes()
    return [i.name for i in (*node_images(), BASE) if not is_current(i, want[i.name])]

"""The offline nginx base image, made from Debian packages and cached.

Offline there is no Docker Hub to pull the Dockerfile's pinned base from, so the pipeline makes an
equivalent base itself: ``debootstrap --variant=minbase --include=nginx-light`` (Debian's default
mirror), configured the way nginxinc/nginx-unprivileged is (user ``nginx`` uid/gid 101, port 8080, the
pid file and temp paths under /tmp, no ``user`` directive), so it runs under ``--cap-drop=ALL`` as
non-root. Debian's stock config fails there (``chown("/var/lib/nginx/body") failed``).

The result is an OCI image layout in the cache, keyed by the recipe, built once and reused. It can be
pushed to a registry as ``library/nginx-debian`` so that kaniko, with ``--registry-mirror``, pulls it as
``docker.io/library/nginx-debian``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.config import Settings
from pipeline.errors import ImageError, ToolError
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor, Platform
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Manifest, canonical_json
from pipeline.progress import Progress, Silent
from pipeline.system import require_program

if TYPE_CHECKING:
    from pipeline.registry.client import Client, PushResult

SUITE = "bookworm"
PACKAGES = ("nginx-light",)
REF_NAME = "nginx-base"
MIRROR_REPOSITORY = "library/nginx-debian"  # kaniko pulls it as docker.io/library/nginx-debian
USER_ID = 101
EPOCH = 0  # every file's mtime in the layer: the layer depends on the packages, not on the day

NGINX_CONF = """\
# nginx-debian base (kaniko-pipeline): unprivileged, like nginxinc/nginx-unprivileged.
worker_processes auto;
pid /tmp/nginx.pid;
error_log /dev/stderr notice;
events {
    worker_connections 256;
}
http {
    client_body_temp_path /tmp/client_temp;
    proxy_temp_path       /tmp/proxy_temp;
    fastcgi_temp_path     /tmp/fastcgi_temp;
    uwsgi_temp_path       /tmp/uwsgi_temp;
    scgi_temp_path        /tmp/scgi_temp;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /dev/stdout;
    sendfile on;
    include /etc/nginx/conf.d/*.conf;
}
"""

DEFAULT_SERVER = """\
server {
    listen 8080;
    server_name localhost;
    location / {
        root /usr/share/nginx/html;
        index index.html;
    }
}
"""

# Left out of the layer: kernel filesystems, device nodes, package caches, logs of the bootstrap.
EXCLUDE_CONTENTS = ("dev", "proc", "sys", "run", "tmp", "var/cache/apt", "var/lib/apt/lists")
EXCLUDE_FILES = ("debootstrap",)


@dataclass(frozen=True)
class BaseImage:
    layout: Path
    descriptor: Descriptor
    ref_name: str = REF_NAME

    @property
    def oci_reference(self) -> str:
        """The image in podman/skopeo syntax: ``oci:DIR:REF``."""
        return f"oci:{self.layout}:{self.ref_name}"


def recipe_key() -> str:
    """A short hash of everything that shapes the image, so a changed recipe builds a new one."""
    recipe = {
        "suite": SUITE,
        "packages": PACKAGES,
        "nginx.conf": NGINX_CONF,
        "default.conf": DEFAULT_SERVER,
        "user": USER_ID,
        "arch": _architecture(),
        "format": 1,
    }
    return hashlib.sha256(canonical_json(recipe)).hexdigest()[:16]


def ensure(cache_dir: Path, *, progress: Progress | None = None) -> BaseImage:
    """The cached base image, built first if it is not there yet."""
    progress = progress or Silent()
    root = Path(cache_dir) / "nginx-base" / recipe_key()
    layout_dir = root / "layout"
    cached = _cached(layout_dir)
    if cached is not None:
        progress.step(f"nginx base image: cached at {layout_dir}")
        return cached
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="build-", dir=root))
    try:
        rootfs = work / "rootfs"
        bootstrap(rootfs, progress=progress)
        configure(rootfs)
        progress.step("nginx base image: writing the layer and the OCI layout")
        staging = work / "layout"
        write_layout(rootfs, staging)
        if layout_dir.exists():
            shutil.rmtree(layout_dir)
        os.replace(staging, layout_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Described by the same reader as a cache hit, so a first run and a cached run return equal values.
    built = _cached(layout_dir)
    if built is None:
        raise ImageError(f"the nginx base written to {layout_dir} has no {REF_NAME!r} ref in its index.json")
    progress.step(f"nginx base image: {built.descriptor.digest} at {layout_dir}")
    return built


def _cached(layout_dir: Path) -> BaseImage | None:
    """The base image in ``layout_dir``, described from its index.json, or None if it is not there."""
    if not (layout_dir / "index.json").is_file():
        return None
    desc = Layout.open(layout_dir).ref(REF_NAME)
    return None if desc is None else BaseImage(layout_dir, desc)


def bootstrap(rootfs: Path, *, progress: Progress | None = None) -> None:
    """``debootstrap --variant=minbase --include=nginx-light`` into ``rootfs`` (about 30 s)."""
    progress = progress or Silent()
    program = require_program(
        "debootstrap", "it makes the offline nginx base image from Debian packages", sbin=True
    )
    if os.geteuid() != 0:
        raise ToolError(
            "making the nginx base image needs root (debootstrap creates device nodes and chroots)",
            hint="run this step once as root (it is cached), or pass --base-image with an nginx image you have",
        )
    progress.step(f"nginx base image: debootstrap {SUITE} with {' '.join(PACKAGES)} (about 30 s)")
    argv = [program, "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE, str(rootfs)]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        log = rootfs / "debootstrap" / "debootstrap.log"
        tail = (result.stderr or result.stdout).strip().splitlines()[-6:]
        raise ToolError(
            f"debootstrap failed with status {result.returncode}: " + "\n".join(tail),
            hint=f"check that the Debian package mirror is reachable; its log is {log}",
        )


def configure(rootfs: Path) -> None:
    """Make Debian's nginx run unprivileged on port 8080, the way nginx-unprivileged does."""
    nginx = rootfs / "etc" / "nginx"
    if not (rootfs / "usr" / "sbin" / "nginx").exists():
        raise ImageError(f"{rootfs} has no /usr/sbin/nginx: debootstrap did not install nginx-light")
    (nginx / "nginx.conf").write_text(NGINX_CONF)
    (nginx / "conf.d").mkdir(exist_ok=True)
    (nginx / "conf.d" / "default.conf").write_text(DEFAULT_SERVER)
    for site in (nginx / "sites-enabled").glob("*"):
        site.unlink()
    _add_line(rootfs / "etc" / "group", f"nginx:x:{USER_ID}:")
    _add_line(
        rootfs / "etc" / "passwd", f"nginx:x:{USER_ID}:{USER_ID}:nginx user:/nonexistent:/usr/sbin/nologin"
    )
    _add_line(rootfs / "etc" / "shadow", "nginx:!:19000::::::")
    html = rootfs / "usr" / "share" / "nginx" / "html"
    if not (html / "index.html").is_file():
        raise ImageError(f"{html}/index.html (the nginx welcome page) is missing from the rootfs")
    for path in (html, *html.rglob("*")):
        os.chown(path, USER_ID, USER_ID, follow_symlinks=False)


def _add_line(path: Path, line: str) -> None:
    name = line.split(":", 1)[0] + ":"
    text = path.read_text() if path.exists() else ""
    if any(existing.startswith(name) for existing in text.splitlines()):
        return
    if text and not text.endswith("\n"):
        text += "\n"
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    path.write_text(text + line + "\n")
    os.chmod(path, mode)


def write_layout(rootfs: Path, layout_dir: Path) -> Descriptor:
    """One gzip layer of ``rootfs``, an image config, a manifest, in a new OCI layout."""
    layout = Layout.create(layout_dir)
    with tempfile.TemporaryDirectory(dir=layout_dir) as tmp:
        layer_path = Path(tmp) / "layer.tar.gz"
        diff_id = write_layer(rootfs, layer_path)
        layer_digest, layer_size = layout.add_blob_file(layer_path)
    config = image_config(diff_id)
    config_bytes = canonical_json(config)
    config_desc = Descriptor(mediatype.OCI_CONFIG, layout.write_blob(config_bytes), len(config_bytes))
    layer_desc = Descriptor(mediatype.OCI_LAYER_GZIP, layer_digest, layer_size)
    manifest = Manifest(
        config=config_desc,
        layers=[layer_desc],
        annotations={"org.opencontainers.image.title": f"nginx-debian ({SUITE}, {' '.join(PACKAGES)})"},
    )
    desc = layout.write_manifest(manifest)
    desc = Descriptor(desc.media_type, desc.digest, desc.size, platform=Platform("linux", _architecture()))
    return layout.set_ref(REF_NAME, desc)


def write_layer(rootfs: Path, dest: Path) -> str:
    """A deterministic tar of ``rootfs`` (sorted, fixed mtimes, numeric owners), gzip'd without a
    timestamp. Returns the diff id (the digest of the uncompressed tar)."""
    hasher = _HashingWriter()
    with (
        open(dest, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=3, mtime=0) as zipped,
    ):
        hasher.target = zipped
        with tarfile.open(fileobj=hasher, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for path in _walk(rootfs):
                rel = path.relative_to(rootfs).as_posix()
                info = tar.gettarinfo(str(path), arcname=rel)
                if info.isdev() or info.type == tarfile.FIFOTYPE:
                    continue
                info.mtime = EPOCH
                info.uname = info.gname = ""
                info.pax_headers = {}
                if info.isreg():
                    with open(path, "rb") as handle:
                        tar.addfile(info, handle)
                else:
                    tar.addfile(info)
    return hasher.digest()


def _walk(rootfs: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(rootfs):
        here = Path(dirpath)
        rel = here.relative_to(rootfs).as_posix()
        dirnames.sort()
        if rel in EXCLUDE_FILES:
            dirnames[:] = []
            continue
        if rel != ".":
            out.append(here)
        if rel in EXCLUDE_CONTENTS:
            dirnames[:] = []
            continue
        for name in sorted(filenames):
            out.append(here / name)
        # symlinks to directories are listed in dirnames but not followed by os.walk
        for name in list(dirnames):
            if (here / name).is_symlink():
                out.append(here / name)
                dirnames.remove(name)
    return out


class _HashingWriter:
    """A write-only file object that hashes what passes through it (the layer's diff id)."""

    def __init__(self) -> None:
        self.target: gzip.GzipFile | None = None
        self._hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        assert self.target is not None
        self._hash.update(data)
        self.target.write(data)
        return len(data)

    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def image_config(diff_id: str) -> dict[str, object]:
    return {
        "architecture": _architecture(),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "User": str(USER_ID),
            "ExposedPorts": {"8080/tcp": {}},
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["nginx", "-g", "daemon off;"],
            "StopSignal": "SIGQUIT",
            "Labels": {"org.opencontainers.image.description": "nginx-light from Debian " + SUITE},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "kaniko-pipeline nginxbase"}],
    }


def _architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)


def config_json(base: BaseImage) -> dict[str, object]:
    layout = Layout.open(base.layout)
    manifest = layout.read_manifest(base.descriptor)
    assert isinstance(manifest, Manifest)
    data: dict[str, object] = json.loads(layout.read_blob(manifest.config.digest))
    return data


def mirror_reference(registry_host: str) -> str:
    """Where the base goes in a mirror registry: ``HOST/library/nginx-debian:<recipe key>``."""
    return f"{registry_host}/{MIRROR_REPOSITORY}:{recipe_key()}"


def docker_hub_name(digest: str) -> str:
    """The name kaniko uses for the base through ``--registry-mirror``: docker.io/library/nginx-debian@DIGEST."""
    return f"docker.io/{MIRROR_REPOSITORY}@{digest}"


def publish(base: BaseImage, client: Client, registry_host: str) -> PushResult:
    """Push the base to ``registry_host`` (e.g. the local registry kaniko uses as its docker.io mirror)."""
    from pipeline.registry.reference import Reference

    ref = Reference.parse(mirror_reference(registry_host))
    assert ref.tag is not None
    return client.push_layout(Layout.open(base.layout), base.descriptor, ref, tags=[ref.tag])


def run(settings: Settings, *, push_to: str = "", progress: Progress | None = None) -> dict[str, Any]:
    """`invoke nginx-base`: make the base (cached) and, with ``push_to``, push it to that registry."""
    from pipeline.registry.client import Client
    from pipeline.registry.credentials import Credentials
    from pipeline.registry.reference import host_of_prefix

    progress = progress or Silent()
    base = ensure(settings.cache_dir, progress=progress)
    out: dict[str, Any] = {"layout": str(base.layout), "digest": base.descriptor.digest}
    if push_to:
        with Client(
            credentials=Credentials.from_environment(settings.env),
            insecure=settings.insecure_for(host_of_prefix(push_to)),
            ca_file=settings.ca_bundle,
            progress=progress,
        ) as client:
            pushed = publish(base, client, push_to)
        out["pushed"] = f"{push_to}/{MIRROR_REPOSITORY}@{pushed.digest}"
        out["base_image"] = docker_hub_name(pushed.digest)
    return out

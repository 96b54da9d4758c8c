"""Stand-in base images, made offline, that every case builds on (kaniko and buildah alike).

- busybox: Debian's busybox-static as ``/bin/busybox`` plus a hard link per applet, and a minimal
  ``/etc/passwd`` and ``/etc/group`` (the shape of Docker Hub's busybox image);
- debian: the Debian bookworm root filesystem that pipeline/services/nginxbase.py makes with mmdebstrap (its one
  layer, reused), with a plain Debian image config.

They are written once as OCI layouts under the cache, pushed to a local registry that kaniko reads as its
``--registry-mirror`` (so ``FROM busybox`` and ``FROM debian:12.10`` keep their real names), and pulled
from there into buildah's storage under the same ``docker.io/library/...`` names.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline.image import layers
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Manifest, canonical_json
from pipeline.progress import Progress, Silent
from pipeline.registry.client import Client
from pipeline.registry.reference import Reference
from pipeline.services import nginxbase
from pipeline.system import require_program

EPOCH = 1700000000
FORMAT = 2  # bump when the stand-ins change shape, so cached ones are made again
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX_TAGS = ("latest", "musl", "1.31", "1.36", "1.37")
DEBIAN_TAGS = ("12.10", "12", "bookworm", "bookworm-slim", "latest")
# Registries that mirror Docker Hub's library images under the bare name: the stand-ins answer for them
# too (kaniko through --registry-map to the local registry, buildah by the same names).
MIRROR_HOST = "mirror.gcr.io"
MIRRORED = {"library/busybox": "busybox"}


@dataclass(frozen=True)
class Base:
    repository: str  # library/busybox
    tags: tuple[str, ...]
    layout: Path
    descriptor: Descriptor

    def names(self) -> list[str]:
        """The Docker Hub names a Dockerfile uses for it (and the Docker Hub mirror's)."""
        names = [f"docker.io/{self.repository}:{tag}" for tag in self.tags]
        if self.repository in MIRRORED:
            names += [f"{MIRROR_HOST}/{MIRRORED[self.repository]}:{tag}" for tag in self.tags]
        return names


def _platform_config(diff_id: str, cmd: list[str]) -> bytes:
    from pipeline.services.nginxbase import _architecture

    return canonical_json(
        {
            "architecture": _architecture(),
            "os": "linux",
            "created": "1970-01-01T00:00:00Z",
            "config": {"Env": [PATH_ENV], "Cmd": cmd},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            # One history entry per layer, as every Docker Hub image has: kaniko's --reproducible
            # (go-containerregistry's mutate.Time) panics on a base whose history is shorter than its layers.
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "kaniko-pipeline stand-in base"}],
        }
    )


def _finish(layout: Layout, config: bytes, layer: Descriptor) -> Descriptor:
    config_desc = Descriptor(mediatype.OCI_CONFIG, layout.write_blob(config), len(config))
    desc = layout.write_manifest(Manifest(config=config_desc, layers=[layer]))
    layout.set_ref("base", desc)
    return desc


def busybox(cache_dir: Path) -> Base:
    """The busybox stand-in (cached by the busybox binary's hash)."""
    program = Path(
        require_program("busybox", "the conformance cases build on a busybox stand-in", "busybox-static")
    )
    binary = program.resolve()
    key = hashlib.sha256(binary.read_bytes()).hexdigest()[:16]
    root = Path(cache_dir) / "conformance" / "bases" / f"busybox-{key}-v{FORMAT}"
    if not (root / "index.json").is_file():
        applets = subprocess.run(
            [str(binary), "--list"], capture_output=True, text=True, check=True
        ).stdout.split()
        entries = [layers.directory("/bin", 0o755), layers.file("/bin/busybox", source=binary, mode=0o755)]
        entries += [layers.hardlink(f"/bin/{name}", "/bin/busybox") for name in applets if name != "busybox"]
        entries += [
            layers.directory("/etc", 0o755),
            layers.file(
                "/etc/passwd",
                data=b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
            ),
            layers.file("/etc/group", data=b"root:x:0:\nnogroup:x:65534:\n"),
            layers.directory("/root", 0o700),
            layers.directory("/tmp", 0o1777),
        ]
        staging = root.with_name(root.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        layout = Layout.create(staging)
        built = layers.build(entries, EPOCH, staging.parent / f"{staging.name}.layer.tar.gz")
        digest, size = layout.add_blob_file(built.path)
        built.path.unlink()
        _finish(
            layout,
            _platform_config(built.diff_id, ["sh"]),
            Descriptor(mediatype.OCI_LAYER_GZIP, digest, size),
        )
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
    return Base("library/busybox", BUSYBOX_TAGS, root, Layout.open(root).refs()["base"])


def debian(cache_dir: Path, progress: Progress | None = None) -> Base:
    """The Debian bookworm stand-in: the mmdebstrap-made root filesystem of the nginx base (cached)."""
    source = nginxbase.ensure(cache_dir, progress=progress or Silent())
    src_layout = Layout.open(source.layout)
    manifest = src_layout.read_manifest(source.descriptor)
    assert isinstance(manifest, Manifest)
    layer = manifest.layers[0]
    diff_id = json.loads(src_layout.read_blob(manifest.config.digest))["rootfs"]["diff_ids"][0]
    root = Path(cache_dir) / "conformance" / "bases" / f"debian-{layer.digest[7:23]}-v{FORMAT}"
    if not (root / "index.json").is_file():
        staging = root.with_name(root.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        layout = Layout.create(staging)
        layout.add_blob_file(src_layout.blob_path(layer.digest))
        _finish(layout, _platform_config(diff_id, ["bash"]), layer)
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)
    return Base("library/debian", DEBIAN_TAGS, root, Layout.open(root).refs()["base"])


def publish(bases: list[Base], client: Client, registry_host: str) -> None:
    """Push each base under each of its tags to ``registry_host`` (kaniko's docker.io mirror)."""
    for base in bases:
        ref = Reference.parse(f"{registry_host}/{base.repository}:{base.tags[0]}")
        client.push_layout(Layout.open(base.layout), base.descriptor, ref, tags=list(base.tags))
        if base.repository in MIRRORED:  # as the mirror names it, for kaniko's --registry-map
            mirrored = Reference.parse(f"{registry_host}/{MIRRORED[base.repository]}:{base.tags[0]}")
            client.push_layout(Layout.open(base.layout), base.descriptor, mirrored, tags=list(base.tags))

"""Tiny multi-platform OCI images written with pipeline.oci.layout, for the registry tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor, Platform
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Index, Manifest, descriptor_of

PLATFORMS = (Platform("linux", "amd64"), Platform("linux", "arm64", "v8"))


def _layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzip'd tar (fixed times and owners) and its diff_id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), "sha256:" + hashlib.sha256(tar_bytes).hexdigest()


def build_image(
    root: Path, *, seed: str = "a", layer_size: int = 200_000, platforms: tuple[Platform, ...] = PLATFORMS
) -> tuple[Layout, Descriptor]:
    """An OCI layout with one index over one image per platform; each image has two layers.

    The first layer is the same for every platform (shared blob); the second is random bytes of
    ``layer_size`` (incompressible, so uploads really carry that many bytes).
    """
    layout = Layout.create(root)
    shared, shared_diff = _layer({"etc/shared.txt": f"shared {seed}\n".encode()})
    shared_desc = Descriptor(mediatype.OCI_LAYER_GZIP, layout.write_blob(shared), len(shared))
    children = []
    for platform in platforms:
        own, own_diff = _layer({f"bin/{platform.architecture}": os.urandom(layer_size)})
        own_desc = Descriptor(mediatype.OCI_LAYER_GZIP, layout.write_blob(own), len(own))
        config = json.dumps(
            {
                "architecture": platform.architecture,
                "os": platform.os,
                **({"variant": platform.variant} if platform.variant else {}),
                "config": {"Env": [f"SEED={seed}"]},
                "rootfs": {"type": "layers", "diff_ids": [shared_diff, own_diff]},
            },
            sort_keys=True,
        ).encode()
        config_desc = Descriptor(mediatype.OCI_CONFIG, layout.write_blob(config), len(config))
        manifest = Manifest(config=config_desc, layers=[shared_desc, own_desc])
        desc = layout.write_manifest(manifest)
        children.append(descriptor_of(manifest, platform=platform))
        assert desc.digest == children[-1].digest
    index = Index(manifests=children, annotations={"org.opencontainers.image.version": "1.0.0"})
    top = layout.write_manifest(index)
    layout.set_ref("v1", top)
    return layout, top


def blob_bytes(layout: Layout, top: Descriptor) -> int:
    """Bytes of all distinct blobs (configs and layers) under ``top``."""
    seen: dict[str, int] = {}
    for desc in layout.walk(top):
        if desc.media_type not in mediatype.ALL_MANIFEST_TYPES:
            seen[desc.digest] = desc.size
    return sum(seen.values())

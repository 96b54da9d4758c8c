"""Small OCI image layouts for tests, written with pipeline.oci.layout.

``build_image``: one tiny multi-platform image (registry client tests). ``build_layout``: layouts
shaped like `invoke build`'s output (publish tests, the benchmark): one index per variant (named in
index.json by ``org.opencontainers.image.ref.name`` = the variant), one image per platform, real
gzip'd tar layers of random (incompressible) bytes, the version in the index's
``org.opencontainers.image.version`` annotation.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Sequence
from pathlib import Path

from pipeline.oci import digests, mediatype
from pipeline.oci.descriptor import Descriptor, Platform
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Index, Manifest, descriptor_of
from pipeline.registry.client import Client
from pipeline.registry.reference import Reference

VERSION_ANNOTATION = "org.opencontainers.image.version"
PLATFORMS = (Platform("linux", "amd64"), Platform("linux", "arm64", "v8"))


def layer_blob(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzip'd tar with fixed times and owners, and its diff_id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, compresslevel=1, mtime=0), "sha256:" + hashlib.sha256(
        tar_bytes
    ).hexdigest()


def add_image(
    layout: Layout,
    name: str,
    *,
    version: str = "1.25.16",
    layer_sizes: Sequence[int] = (20_000, 5_000),
    platforms: Sequence[str] = ("linux/amd64", "linux/arm64"),
    shared: bytes | None = None,
) -> Descriptor:
    """Add one variant's index to ``layout`` (ref name ``name``) and return its descriptor.

    ``shared`` (if given) is a layer every platform of every image made with it has in common.
    """
    children = []
    for text in platforms:
        platform = Platform.parse(text)
        layers: list[Descriptor] = []
        diff_ids: list[str] = []
        if shared is not None:
            blob, diff = layer_blob({"etc/shared": shared})
            layers.append(Descriptor(mediatype.OCI_LAYER_GZIP, layout.write_blob(blob), len(blob)))
            diff_ids.append(diff)
        for i, size in enumerate(layer_sizes):
            blob, diff = layer_blob({f"kaniko/{name}-{platform.architecture}-{i}": os.urandom(size)})
            layers.append(Descriptor(mediatype.OCI_LAYER_GZIP, layout.write_blob(blob), len(blob)))
            diff_ids.append(diff)
        config = json.dumps(
            {
                "architecture": platform.architecture,
                "os": platform.os,
                "config": {"Entrypoint": ["/kaniko/executor"], "Labels": {VERSION_ANNOTATION: version}},
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
            },
            sort_keys=True,
        ).encode()
        config_desc = Descriptor(mediatype.OCI_CONFIG, layout.write_blob(config), len(config))
        manifest = Manifest(config=config_desc, layers=layers, annotations={VERSION_ANNOTATION: version})
        layout.write_manifest(manifest)
        children.append(descriptor_of(manifest, platform=platform))
    index = Index(manifests=children, annotations={VERSION_ANNOTATION: version})
    top = layout.write_manifest(index)
    layout.set_ref(name, top)
    return top


def build_layout(
    root: Path,
    *,
    version: str = "1.25.16",
    variants: Sequence[str] = ("executor", "debug", "slim", "warmer"),
    layer_sizes: Sequence[int] = (20_000, 5_000),
    platforms: Sequence[str] = ("linux/amd64", "linux/arm64"),
) -> tuple[Layout, dict[str, Descriptor]]:
    layout = Layout.create(root)
    shared = os.urandom(4096)
    images = {
        v: add_image(layout, v, version=version, layer_sizes=layer_sizes, platforms=platforms, shared=shared)
        for v in variants
    }
    return layout, images


def build_image(
    root: Path, *, seed: str = "a", layer_size: int = 200_000, platforms: tuple[Platform, ...] = PLATFORMS
) -> tuple[Layout, Descriptor]:
    """An OCI layout with one index over one image per platform; each image has two layers.

    The first layer is the same for every platform (shared blob); the second is random bytes of
    ``layer_size`` (incompressible, so uploads really carry that many bytes).
    """
    layout = Layout.create(root)
    shared, shared_diff = layer_blob({"etc/shared.txt": f"shared {seed}\n".encode()})
    shared_desc = Descriptor(mediatype.OCI_LAYER_GZIP, layout.write_blob(shared), len(shared))
    children = []
    for platform in platforms:
        own, own_diff = layer_blob({f"bin/{platform.architecture}": os.urandom(layer_size)})
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
    index = Index(manifests=children, annotations={VERSION_ANNOTATION: "1.0.0"})
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


def push_index(client: Client, repo: Reference, seed: str = "x") -> Descriptor:
    """A two-platform image index with tiny blobs, pushed by digest and tagged `latest`."""
    manifests = []
    for platform in (Platform("linux", "amd64"), Platform("linux", "arm64")):
        config = json.dumps({"architecture": platform.architecture, "os": platform.os, "seed": seed}).encode()
        layer = f"{seed}-{platform}".encode()
        client.upload_blob(repo, config)
        client.upload_blob(repo, layer)
        manifest = Manifest(
            config=Descriptor(mediatype.OCI_CONFIG, digests.of_bytes(config), len(config)),
            layers=[Descriptor(mediatype.OCI_LAYER, digests.of_bytes(layer), len(layer))],
        )
        data = manifest.to_bytes()
        client.put_manifest(repo.with_digest(digests.of_bytes(data)), data, manifest.media_type)
        manifests.append(
            Descriptor(manifest.media_type, digests.of_bytes(data), len(data), platform=platform)
        )
    index = Index(manifests=manifests)
    data = index.to_bytes()
    digest = client.put_manifest(repo.with_digest(digests.of_bytes(data)), data, index.media_type)
    client.put_manifest(repo.with_tag("latest"), data, index.media_type)
    return Descriptor(index.media_type, digest, len(data))


# A Sigstore bundle as a referrer of an image (what signing attaches), for the referrers tests.
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY = Descriptor(mediatype.OCI_EMPTY, mediatype.EMPTY_DIGEST, 2)


def bundle_artifact(
    client: Client, ref: Reference, subject: Descriptor, payload: bytes, kind: str = BUNDLE
) -> Manifest:
    digest = client.upload_blob(ref, payload)
    assert client.upload_blob(ref, mediatype.EMPTY_JSON) == mediatype.EMPTY_DIGEST
    return Manifest(
        config=EMPTY,
        layers=[Descriptor(kind, digest, len(payload))],
        annotations={
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
            "org.opencontainers.image.created": "2026-01-01T00:00:00Z",
        },
        subject=Descriptor(subject.media_type, subject.digest, subject.size),
        artifact_type=kind,
    )

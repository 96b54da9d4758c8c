"""Reading built images back for tests: flatten a manifest's layers into a path -> entry map."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any

from pipeline.oci.descriptor import Descriptor
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Index, Manifest


@dataclass(frozen=True)
class Node:
    kind: str  # dir, file, symlink, hardlink
    mode: int
    uid: int
    gid: int
    mtime: int
    link: str
    data: bytes


def _kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    return "file"


def layer_members(layout: Layout, desc: Descriptor) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layout.read_blob(desc.digest))), mode="r:") as tar:
        for member in tar:
            data = b""
            if member.isfile():
                handle = tar.extractfile(member)
                assert handle is not None
                data = handle.read()
            nodes[member.name.rstrip("/")] = Node(
                _kind(member), member.mode, member.uid, member.gid, int(member.mtime), member.linkname, data
            )
    return nodes


def platform_manifest(layout: Layout, variant: str, platform: str) -> tuple[Manifest, Descriptor]:
    index = layout.read_manifest(layout.refs()[variant])
    assert isinstance(index, Index)
    for desc in index.manifests:
        assert desc.platform is not None
        if f"{desc.platform.os}/{desc.platform.architecture}" == platform:
            manifest = layout.read_manifest(desc)
            assert isinstance(manifest, Manifest)
            return manifest, desc
    raise AssertionError(f"{variant} has no {platform} manifest")


def flatten(layout: Layout, manifest: Manifest) -> tuple[dict[str, Node], list[dict[str, Node]]]:
    """The file system the layers make (later layers win), and each layer's own entries."""
    merged: dict[str, Node] = {}
    per_layer = []
    for desc in manifest.layers:
        nodes = layer_members(layout, desc)
        per_layer.append(nodes)
        merged.update(nodes)
    return merged, per_layer


def config(layout: Layout, manifest: Manifest) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(layout.read_blob(manifest.config.digest))
    return data

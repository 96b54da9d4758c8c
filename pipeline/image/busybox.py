"""busybox for the debug image: the ``/bin`` of the ``busybox:musl@sha256:...`` image that the
Dockerfile pins, for one platform.

Sources, handed in: an OCI image layout directory, or busybox already fetched from a registry by the
build stage (:mod:`pipeline.stages.fetch_busybox`). Nothing here reaches the network.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from pipeline.errors import ImageError
from pipeline.image import layers
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor, Platform
from pipeline.oci.layout import REF_NAME, Layout
from pipeline.oci.manifest import Index, Manifest
from pipeline.progress import Progress, Silent


class BusyboxSource(Protocol):
    """Where busybox comes from: the image manifest for a platform and its layer blobs."""

    @property
    def description(self) -> str: ...

    @property
    def pinned(self) -> bool:
        """True when the content is the digest the Dockerfile pins."""
        ...

    def manifest(self, platform: Platform) -> Manifest: ...

    def blob(self, digest: str) -> bytes: ...


def _pick(index: Index, platform: Platform, where: str) -> Descriptor:
    for desc in index.manifests:
        if desc.platform is not None and platform.matches(desc.platform):
            return desc
    found = ", ".join(str(d.platform) for d in index.manifests if d.platform) or "none"
    raise ImageError(f"busybox from {where} has no image for {platform} (it has: {found})")


class LayoutSource:
    """busybox from an OCI image layout directory (the pinned digest if the layout has it)."""

    def __init__(self, root: Path, pinned_digest: str) -> None:
        self.layout = Layout.open(root)
        entries = self.layout.index().manifests
        chosen = next((d for d in entries if d.digest == pinned_digest), None)
        self.pinned = chosen is not None
        if chosen is None:
            named = [d for d in entries if d.annotations.get(REF_NAME, "").startswith(("busybox", "musl"))]
            candidates = named or list(entries)
            if len(candidates) != 1:
                raise ImageError(
                    f"the busybox layout {root} has {len(candidates)} images and none with the pinned digest "
                    f"{pinned_digest}",
                    hint="give a layout with one image, or one named busybox (org.opencontainers.image.ref.name)",
                )
            chosen = candidates[0]
        self.top = chosen
        self.description = f"{root} ({chosen.digest})"

    def manifest(self, platform: Platform) -> Manifest:
        found = self.layout.read_manifest(self.top)
        if isinstance(found, Index):
            found = self.layout.read_manifest(_pick(found, platform, self.description))
        assert isinstance(found, Manifest)
        return found

    def blob(self, digest: str) -> bytes:
        return self.layout.read_blob(digest)


@dataclass(frozen=True)
class Fetched:
    """busybox already fetched (pipeline/stages/fetch_busybox.py): each platform's manifest and the layer
    blobs they name, in memory (a few MB)."""

    description: str
    pinned: bool
    manifests: Mapping[str, Manifest]  # str(platform) -> its image manifest
    blobs: Mapping[str, bytes]  # digest -> blob

    def manifest(self, platform: Platform) -> Manifest:
        found = self.manifests.get(str(platform))
        if found is None:
            raise ImageError(
                f"busybox from {self.description} was fetched for {', '.join(self.manifests) or 'no platform'}, "
                f"not {platform}"
            )
        return found

    def blob(self, digest: str) -> bytes:
        return self.blobs[digest]


@dataclass(frozen=True)
class _Item:
    kind: layers.EntryKind
    mode: int
    data: bytes | None = None
    target: str | None = None


def _open_layer(data: bytes, media_type: str) -> tarfile.TarFile:
    if media_type.endswith("gzip") or data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif media_type not in (mediatype.OCI_LAYER, "application/vnd.docker.image.rootfs.diff.tar"):
        raise ImageError(f"busybox layer of media type {media_type} is not supported")
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:")


def _rootfs(source: BusyboxSource, manifest: Manifest) -> dict[str, _Item]:
    """The image's files after its layers are applied in order (whiteouts honoured), by path."""
    tree: dict[str, _Item] = {}
    for desc in manifest.layers:
        with _open_layer(source.blob(desc.digest), desc.media_type) as tar:
            for member in tar:
                name = PurePosixPath(member.name.lstrip("./") or ".").as_posix()
                base = PurePosixPath(name).name
                if base.startswith(".wh."):
                    _whiteout(tree, PurePosixPath(name))
                    continue
                item = _item(tar, member)
                if item is not None:
                    tree[name] = item
    return tree


def _whiteout(tree: dict[str, _Item], marker: PurePosixPath) -> None:
    """Apply a whiteout: ``.wh..wh..opq`` empties its directory, ``.wh.NAME`` removes NAME (and below)."""
    if marker.name == ".wh..wh..opq":
        inside = f"{marker.parent}/"
        gone = [k for k in tree if k.startswith(inside)]
    else:
        removed = str(marker.parent / marker.name[4:])
        gone = [k for k in tree if k == removed or k.startswith(removed + "/")]
    for key in gone:
        del tree[key]


def _item(tar: tarfile.TarFile, member: tarfile.TarInfo) -> _Item | None:
    mode = member.mode & 0o7777
    if member.isdir():
        return _Item("dir", mode)
    if member.issym():
        return _Item("symlink", mode, target=member.linkname)
    if member.islnk():
        return _Item("hardlink", mode, target=member.linkname.lstrip("./"))
    if member.isfile():
        handle = tar.extractfile(member)
        assert handle is not None
        return _Item("file", mode, data=handle.read())
    return None


def bin_entries(
    source: BusyboxSource, platform: Platform, dest: str = "/busybox", progress: Progress | None = None
) -> list[layers.Entry]:
    """The entries of busybox's /bin, as `COPY --from=busybox /bin /busybox` puts them under ``dest``.

    Layers are applied in order (whiteouts honoured); ownership becomes 0:0, modes are kept, hard links
    within /bin stay hard links, symlinks keep their targets.
    """
    progress = progress or Silent()
    manifest = source.manifest(platform)
    progress.info(f"busybox for {platform} from {source.description}")
    tree = _rootfs(source, manifest)
    if "bin" not in tree:
        raise ImageError(f"busybox from {source.description} for {platform} has no /bin")
    entries = [layers.directory(dest, tree["bin"].mode)]
    for name, item in sorted(tree.items()):
        if name.startswith("bin/"):
            entries.append(_entry(tree, name, item, dest))
    return entries


def _entry(tree: dict[str, _Item], name: str, item: _Item, dest: str) -> layers.Entry:
    """The entry for /``name`` (under /bin) at its place under ``dest``."""
    path = dest + "/" + name[len("bin/") :]
    if item.kind == "dir":
        return layers.directory(path, item.mode)
    if item.kind == "symlink":
        return layers.symlink(path, item.target or "")
    if item.kind == "file":
        return layers.file(path, data=item.data, mode=item.mode)
    target = item.target or ""
    resolved = tree.get(target)
    if resolved is None or resolved.kind != "file":
        raise ImageError(f"busybox: hard link /{name} names /{target}, which the image does not have")
    if target.startswith("bin/"):
        return layers.hardlink(path, dest + "/" + target[len("bin/") :])
    return layers.file(path, data=resolved.data, mode=resolved.mode)  # a link out of /bin becomes a copy


__all__ = ["Fetched", "LayoutSource", "BusyboxSource", "bin_entries"]

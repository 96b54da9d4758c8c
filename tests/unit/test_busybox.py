"""busybox's /bin for the debug image, read from an image's layers (pipeline/image/busybox.py): layers in
order with their whiteouts, hard links kept inside /bin, a link out of /bin copied, ownership 0:0."""

from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from pipeline.errors import ImageError
from pipeline.image import busybox, layers
from pipeline.oci import digests, mediatype
from pipeline.oci.descriptor import Descriptor, Platform
from pipeline.oci.manifest import Manifest

AMD64 = Platform("linux", "amd64")
Member = tuple[str, str, bytes | str]  # name, kind (dir, file, link, symlink), data or target


def _tar(members: list[Member]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, value in members:
            info = tarfile.TarInfo(name)
            info.uid = info.gid = 1000
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            elif kind == "file":
                assert isinstance(value, bytes)
                info.size, info.mode = len(value), 0o755
                tar.addfile(info, io.BytesIO(value))
            else:
                assert isinstance(value, str)
                info.type = tarfile.LNKTYPE if kind == "link" else tarfile.SYMTYPE
                info.linkname, info.mode = value, 0o777
                tar.addfile(info)
    return gzip.compress(buf.getvalue(), mtime=0)


class Layers:
    """A busybox source whose image is the given layers (what a fetched or a layout busybox gives)."""

    description = "test layers"
    pinned = True

    def __init__(self, *layer_members: list[Member]) -> None:
        self.blobs = {digests.of_bytes(data): data for data in map(_tar, layer_members)}
        config = Descriptor(mediatype.OCI_CONFIG, digests.of_bytes(b"{}"), 2)
        descs = [Descriptor(mediatype.OCI_LAYER_GZIP, d, len(b)) for d, b in self.blobs.items()]
        self._manifest = Manifest(config=config, layers=descs)

    def manifest(self, platform: Platform) -> Manifest:
        return self._manifest

    def blob(self, digest: str) -> bytes:
        return self.blobs[digest]


def _described(entries: list[layers.Entry]) -> dict[str, tuple[str, bytes | str | None]]:
    """path -> (kind, the link's target or the file's content) of each entry, ownership and mode checked."""
    assert all(entry.mode & 0o7000 == 0 for entry in entries)
    return {
        entry.path: (entry.kind, entry.data if entry.kind == "file" else entry.target) for entry in entries
    }


def test_bin_moves_under_busybox_with_hard_links_kept_and_a_link_out_of_bin_copied() -> None:
    source = Layers(
        [
            ("bin", "dir", ""),
            ("bin/busybox", "file", b"BUSYBOX"),
            ("bin/sh", "link", "bin/busybox"),
            ("bin/ls", "symlink", "busybox"),
            ("etc", "dir", ""),
            ("etc/tool", "file", b"TOOL"),
            ("bin/tool", "link", "etc/tool"),
        ]
    )
    assert _described(busybox.bin_entries(source, AMD64)) == {
        "/busybox": ("dir", None),
        "/busybox/busybox": ("file", b"BUSYBOX"),
        "/busybox/ls": ("symlink", "busybox"),
        "/busybox/sh": ("hardlink", "/busybox/busybox"),
        "/busybox/tool": ("file", b"TOOL"),  # etc/ is not copied, so the link out of /bin becomes a copy
    }


def test_later_layers_and_their_whiteouts_win() -> None:
    source = Layers(
        [
            ("bin", "dir", ""),
            ("bin/busybox", "file", b"OLD"),
            ("bin/gone", "file", b"x"),
            ("bin/sub", "dir", ""),
            ("bin/sub/a", "file", b"a"),
            ("bin/keep-prefix", "file", b"kept"),
        ],
        [
            ("bin/busybox", "file", b"NEW"),
            ("bin/.wh.gone", "file", b""),
            ("bin/sub/.wh..wh..opq", "file", b""),
            ("bin/.wh.keep", "file", b""),  # removes bin/keep only, not bin/keep-prefix
        ],
    )
    assert _described(busybox.bin_entries(source, AMD64)) == {
        "/busybox": ("dir", None),
        "/busybox/busybox": ("file", b"NEW"),
        "/busybox/keep-prefix": ("file", b"kept"),
        "/busybox/sub": ("dir", None),
    }


def test_an_image_without_bin_or_with_a_dangling_hard_link_is_refused() -> None:
    with pytest.raises(ImageError, match="has no /bin"):
        busybox.bin_entries(Layers([("etc", "dir", "")]), AMD64)
    dangling = Layers([("bin", "dir", ""), ("bin/sh", "link", "bin/missing")])
    with pytest.raises(ImageError, match="hard link /bin/sh names /bin/missing"):
        busybox.bin_entries(dangling, AMD64)


def test_busybox_fetched_for_some_platforms_names_them_when_asked_for_another() -> None:
    layers_of = Layers([("bin", "dir", "")])
    where = "r.test/library/busybox@sha256:" + "a" * 64
    fetched = busybox.Fetched(where, True, {"linux/amd64": layers_of.manifest(AMD64)}, layers_of.blobs)
    assert fetched.manifest(AMD64) is layers_of.manifest(AMD64)
    with pytest.raises(ImageError, match=r"was fetched for linux/amd64, not linux/arm64"):
        fetched.manifest(Platform("linux", "arm64"))

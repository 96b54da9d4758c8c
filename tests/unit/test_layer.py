"""Deterministic layers: same entries, same bytes; explicit parents; fixed owners, modes and times."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from pipeline.errors import ImageError
from pipeline.image import layers

EPOCH = 1700000000


def _entries(tmp_path: Path) -> list[layers.Entry]:
    binary = tmp_path / "bin"
    binary.write_bytes(b"\x7fELF" + bytes(range(256)) * 50)
    return [
        layers.file("/kaniko/executor", source=binary, mode=0o755),
        layers.directory("/kaniko", 0o777),
        layers.file("/etc/nsswitch.conf", data=b"hosts: files dns\n"),
        layers.symlink("/bin/sh", "/busybox/sh"),
        layers.hardlink("/busybox/[", "/busybox/busybox"),
        layers.file("/busybox/busybox", data=b"busybox", mode=0o755),
    ]


def _members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path, "r:gz") as tar:
        return tar.getmembers()


def test_same_entries_give_the_same_bytes_in_different_directories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = layers.build(_entries(tmp_path / "a"), EPOCH, tmp_path / "a" / "layer.tgz")
    second = layers.build(list(reversed(_entries(tmp_path / "b"))), EPOCH, tmp_path / "b" / "layer.tgz")
    assert (first.digest, first.size, first.diff_id) == (second.digest, second.size, second.diff_id)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.digest == "sha256:" + hashlib.sha256(first.path.read_bytes()).hexdigest()
    assert first.diff_id == "sha256:" + hashlib.sha256(gzip.decompress(first.path.read_bytes())).hexdigest()


def test_a_different_epoch_gives_a_different_layer(tmp_path: Path) -> None:
    first = layers.build(_entries(tmp_path), EPOCH, tmp_path / "one.tgz")
    second = layers.build(_entries(tmp_path), EPOCH + 1, tmp_path / "two.tgz")
    assert first.diff_id != second.diff_id


def test_gzip_header_has_no_time_and_no_name(tmp_path: Path) -> None:
    built = layers.build(_entries(tmp_path), EPOCH, tmp_path / "layer.tgz")
    header = built.path.read_bytes()[:10]
    assert header[:3] == b"\x1f\x8b\x08"
    assert header[3] == 0  # FLG: no FNAME, no comment, no extra
    assert header[4:8] == b"\0\0\0\0"  # MTIME 0


def test_entries_are_sorted_with_explicit_parents_and_fixed_metadata(tmp_path: Path) -> None:
    built = layers.build(_entries(tmp_path), EPOCH, tmp_path / "layer.tgz", dir_modes={"/kaniko": 0o777})
    members = _members(built.path)
    names = [m.name for m in members]
    assert names == [
        "bin",
        "bin/sh",
        "busybox",
        "busybox/[",
        "busybox/busybox",
        "etc",
        "etc/nsswitch.conf",
        "kaniko",
        "kaniko/executor",
    ]
    for member in members:
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == EPOCH
    by_name = {m.name: m for m in members}
    assert by_name["bin"].isdir() and by_name["bin"].mode == 0o755
    assert by_name["kaniko"].mode == 0o777
    assert by_name["kaniko/executor"].mode == 0o755
    assert by_name["etc/nsswitch.conf"].mode == 0o644
    assert by_name["bin/sh"].issym() and by_name["bin/sh"].linkname == "/busybox/sh"
    # The first name of a hard-link group carries the data; the others link to it.
    assert by_name["busybox/["].isfile() and by_name["busybox/["].size == len(b"busybox")
    assert by_name["busybox/busybox"].islnk() and by_name["busybox/busybox"].linkname == "busybox/["
    assert by_name["busybox/busybox"].mode == 0o755


def test_layer_cache_reuses_the_blob_for_the_same_recipe(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = layers.cached(_entries(tmp_path), EPOCH, cache)
    second = layers.cached(_entries(tmp_path), EPOCH, cache)
    assert first == second
    assert len(list(cache.glob("*.tar.gz"))) == 1
    third = layers.cached([*_entries(tmp_path), layers.directory("/workspace")], EPOCH, cache)
    assert third.digest != first.digest


def test_conflicting_entries_and_dangling_hard_links_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="given twice"):
        layers.normalize([layers.file("/a", data=b"1"), layers.file("/a", data=b"2")])
    with pytest.raises(ImageError, match="not a file in the layer"):
        layers.normalize([layers.hardlink("/a", "/b")])
    with pytest.raises(ImageError, match="not a directory"):
        layers.normalize([layers.file("/a", data=b"1"), layers.file("/a/b", data=b"2")])


def test_tar_stream_is_readable_by_tarfile(tmp_path: Path) -> None:
    sink = io.BytesIO()
    layers.write_tar(layers.normalize(_entries(tmp_path)), EPOCH, sink)
    sink.seek(0)
    with tarfile.open(fileobj=sink, mode="r:") as tar:
        executor = tar.extractfile("kaniko/executor")
        assert executor is not None
        assert executor.read() == (tmp_path / "bin").read_bytes()

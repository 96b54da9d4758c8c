"""What an image holds, flattened: every path's type, mode, owner, size, content hash and link target,
and the parts of its config that a build sets. Read from a docker-archive tarball (what kaniko's
``--tar-path`` writes and what ``buildah push IMAGE docker-archive:PATH`` writes).

Layers are applied in order, as a container runtime would: ``.wh.NAME`` deletes NAME, ``.wh..wh..opq``
empties its directory, a path replaced by another type is replaced. Hard links become regular files with
their target's content (what a container sees); timestamps are not kept at all.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from pipeline.errors import ImageError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
CONFIG_KEYS = ("Env", "Entrypoint", "Cmd", "User", "WorkingDir", "ExposedPorts", "Volumes", "Labels")


@dataclass(frozen=True)
class PathEntry:
    """One path of the image's filesystem (timestamps deliberately absent)."""

    type: str  # file, dir, symlink, char, block, fifo
    mode: int  # permission bits including setuid, setgid and sticky
    uid: int
    gid: int
    size: int = 0
    sha256: str = ""
    target: str = ""  # symlink target

    def describe(self) -> str:
        text = f"{self.type} {self.mode:04o} {self.uid}:{self.gid}"
        if self.type == "file":
            text += f" {self.size} bytes sha256:{self.sha256[:12]}"
        if self.type == "symlink":
            text += f" -> {self.target}"
        return text


@dataclass
class Snapshot:
    files: dict[str, PathEntry] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # only CONFIG_KEYS, normalized
    digest: str = ""  # the config digest (the image id), for information

    def read(self, path: str) -> PathEntry | None:
        return self.files.get(normalize_path(path))


def normalize_path(name: str) -> str:
    """``./a/b/``, ``a/b`` and ``/a/b`` are all ``/a/b``."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    return "/" + "/".join(parts)


def normalize_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The compared config fields, with "absent", null and empty treated alike."""
    out: dict[str, Any] = {}
    for key in CONFIG_KEYS:
        value = config.get(key)
        if key in ("ExposedPorts", "Volumes"):
            out[key] = sorted(value or ())  # a map's keys (or a list of them, as a check gives it)
        elif key == "Labels":
            out[key] = dict(sorted((value or {}).items()))
        elif key in ("Entrypoint", "Cmd", "Env"):
            out[key] = list(value or [])
        else:
            out[key] = str(value or "")
    return out


_TYPES = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.CHRTYPE: "char",
    tarfile.BLKTYPE: "block",
    tarfile.FIFOTYPE: "fifo",
}


def _hash(handle: IO[bytes] | None) -> str:
    digest = hashlib.sha256()
    if handle is not None:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def apply_layer(files: dict[str, PathEntry], layer: tarfile.TarFile, parents: set[str]) -> None:
    """Apply one layer's tar stream to ``files``. ``parents`` holds every path that has (or had)
    something below it, so removing a subtree scans the whole map only when there is a subtree."""
    for member in layer:
        path = normalize_path(member.name)
        parent, base = str(PurePosixPath(path).parent), PurePosixPath(path).name
        if base == OPAQUE:
            _remove_below(files, parents, parent)
            continue
        if base.startswith(WHITEOUT):
            gone = str(PurePosixPath(parent) / base[len(WHITEOUT) :])
            files.pop(gone, None)
            _remove_below(files, parents, gone)
            continue
        _note_parents(parents, path)
        if member.islnk():
            source = files.get(normalize_path(member.linkname))
            if source is None:
                raise ImageError(f"the layer hard-links {path} to {member.linkname}, which it does not hold")
            _replace(files, parents, path, source)
            continue
        kind = _TYPES.get(member.type)
        if kind is None:
            raise ImageError(f"the layer holds {path} of an unknown tar type {member.type!r}")
        entry = PathEntry(
            type=kind,
            mode=member.mode & 0o7777,
            uid=member.uid,
            gid=member.gid,
            size=member.size if kind == "file" else 0,
            sha256=_hash(layer.extractfile(member)) if kind == "file" else "",
            target=member.linkname if kind == "symlink" else "",
        )
        if kind == "dir" and files.get(path, entry).type == "dir":
            files[path] = entry  # a directory entry again: only its metadata changes
            continue
        _replace(files, parents, path, entry)


def _note_parents(parents: set[str], path: str) -> None:
    parent = str(PurePosixPath(path).parent)
    while parent not in parents and parent != "/":
        parents.add(parent)
        parent = str(PurePosixPath(parent).parent)


def _remove_below(files: dict[str, PathEntry], parents: set[str], directory: str) -> None:
    if directory != "/" and directory not in parents:
        return
    prefix = directory.rstrip("/") + "/"
    for name in [n for n in files if n.startswith(prefix)]:
        del files[name]


def _replace(files: dict[str, PathEntry], parents: set[str], path: str, entry: PathEntry) -> None:
    if entry.type != "dir":  # whatever was there (a directory, listed or implied by its children) goes
        _remove_below(files, parents, path)
    files[path] = entry


def _open_layer(data: IO[bytes]) -> tarfile.TarFile:
    head = data.read(2)
    data.seek(0)
    if head == b"\x1f\x8b":
        return tarfile.open(fileobj=gzip.GzipFile(fileobj=data), mode="r|")
    return tarfile.open(fileobj=data, mode="r|")


def read_archive(path: Path) -> Snapshot:
    """Flatten the (first) image of a docker-archive tarball."""
    try:
        with tarfile.open(path, mode="r") as archive:
            names = set(archive.getnames())
            if "manifest.json" not in names:
                raise ImageError(f"{path} is not a docker-archive tarball: it has no manifest.json")
            manifests = json.loads(_read(archive, "manifest.json"))
            if not manifests:
                raise ImageError(f"{path} holds no image")
            first = manifests[0]
            config_name = str(first["Config"])
            config = json.loads(_read(archive, config_name))
            files: dict[str, PathEntry] = {}
            parents: set[str] = set()
            for layer_name in first.get("Layers") or []:
                with io.BytesIO(_read(archive, str(layer_name))) as blob, _open_layer(blob) as layer:
                    apply_layer(files, layer, parents)
    except (tarfile.TarError, OSError, ValueError, KeyError) as exc:
        raise ImageError(f"cannot read the image tarball {path}: {exc}") from exc
    files.pop("/", None)
    digest = "sha256:" + hashlib.sha256(_config_bytes(config)).hexdigest()
    return Snapshot(files=files, config=normalize_config(config.get("config") or {}), digest=digest)


def _config_bytes(config: Mapping[str, Any]) -> bytes:
    return json.dumps(config, sort_keys=True).encode()


def _read(archive: tarfile.TarFile, name: str) -> bytes:
    handle = archive.extractfile(name)
    if handle is None:
        raise ImageError(f"{name} in the image tarball is not a file")
    return handle.read()

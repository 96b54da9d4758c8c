"""What differs between two images (a published one and its rebuild), the way diffoci reports it:
rows of ``KIND NAME PUBLISHED REBUILT``, from the index down to each file of each layer (path, type,
mode, owner, size, content hash)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from typing import Any, Protocol

from pipeline.errors import ImageError
from pipeline.oci.manifest import Index, Manifest, parse


class ImageSource(Protocol):
    """Where an image's manifests and blobs are read from (a registry, or an OCI layout)."""

    def manifest(self, digest: str) -> bytes: ...

    def blob(self, digest: str) -> bytes: ...


MISSING = "-"


@dataclass(frozen=True)
class Row:
    kind: str  # Index, Manifest, Config, Layer, File
    name: str
    published: str
    rebuilt: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "published": self.published, "rebuilt": self.rebuilt}


@dataclass(frozen=True)
class ImageEntry:
    kind: str  # file, dir, symlink, hardlink, other
    mode: int
    owner: str  # uid:gid
    size: int
    sha256: str
    link: str

    def describe(self) -> str:
        text = f"{self.kind} mode={self.mode:04o} owner={self.owner} size={self.size}"
        if self.sha256:
            text += f" sha256:{self.sha256[:16]}"
        if self.link:
            text += f" -> {self.link}"
        return text


def layer_entries(data: bytes) -> dict[str, ImageEntry]:
    """The entries of a (gzip) tar layer, by path without a leading ``./`` or ``/``."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    out: dict[str, ImageEntry] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for member in archive:
                name = member.name.removeprefix("./").strip("/")
                digest = ""
                if member.isreg():
                    handle = archive.extractfile(member)
                    digest = hashlib.sha256(handle.read() if handle else b"").hexdigest()
                kind = (
                    "file"
                    if member.isreg()
                    else "dir"
                    if member.isdir()
                    else "symlink"
                    if member.issym()
                    else "hardlink"
                    if member.islnk()
                    else "other"
                )
                out[name] = ImageEntry(
                    kind, member.mode, f"{member.uid}:{member.gid}", member.size, digest, member.linkname
                )
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ImageError(f"a layer is not a readable tar archive: {exc}") from None
    return out


def _layers(published: ImageSource, rebuilt: ImageSource, a: Manifest, b: Manifest, where: str) -> list[Row]:
    rows: list[Row] = []
    if len(a.layers) != len(b.layers):
        rows.append(Row("Layer", f"{where} (count)", str(len(a.layers)), str(len(b.layers))))
    for i, (la, lb) in enumerate(zip(a.layers, b.layers, strict=False)):
        if la.digest == lb.digest:
            continue
        rows.append(Row("Layer", f"{where} layer {i}", la.digest, lb.digest))
        ea, eb = layer_entries(published.blob(la.digest)), layer_entries(rebuilt.blob(lb.digest))
        for path in sorted(set(ea) | set(eb)):
            x, y = ea.get(path), eb.get(path)
            if x != y:
                rows.append(
                    Row("File", f"/{path}", x.describe() if x else MISSING, y.describe() if y else MISSING)
                )
    return rows


def _config(published: ImageSource, rebuilt: ImageSource, a: Manifest, b: Manifest, where: str) -> list[Row]:
    if a.config.digest == b.config.digest:
        return []
    ca: dict[str, Any] = json.loads(published.blob(a.config.digest))
    cb: dict[str, Any] = json.loads(rebuilt.blob(b.config.digest))
    rows = [Row("Config", where, a.config.digest, b.config.digest)]
    for key in sorted(set(ca) | set(cb)):
        if ca.get(key) != cb.get(key):
            rows.append(Row("Config", f"{where} .{key}", _short(ca.get(key)), _short(cb.get(key))))
    return rows


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if value is not None else MISSING
    return text if len(text) <= 200 else text[:197] + "..."


def diff(
    published: ImageSource, rebuilt: ImageSource, published_digest: str, rebuilt_digest: str
) -> list[Row]:
    """Every difference between two indexes (or manifests); empty when the digests are equal."""
    if published_digest == rebuilt_digest:
        return []
    a, b = parse(published.manifest(published_digest)), parse(rebuilt.manifest(rebuilt_digest))
    rows = [Row("Index" if isinstance(a, Index) else "Manifest", "digest", published_digest, rebuilt_digest)]
    if isinstance(a, Manifest) and isinstance(b, Manifest):
        return rows + _manifest(published, rebuilt, a, b, "image")
    if not (isinstance(a, Index) and isinstance(b, Index)):
        return rows + [Row("Index", "kind", type(a).__name__, type(b).__name__)]
    if a.annotations != b.annotations:
        rows.append(Row("Index", "annotations", _short(a.annotations), _short(b.annotations)))
    pa = {str(m.platform): m for m in a.manifests}
    pb = {str(m.platform): m for m in b.manifests}
    for platform in sorted(set(pa) | set(pb)):
        x, y = pa.get(platform), pb.get(platform)
        if x is None or y is None:
            rows.append(Row("Manifest", platform, x.digest if x else MISSING, y.digest if y else MISSING))
            continue
        if x.digest == y.digest:
            continue
        rows.append(Row("Manifest", platform, x.digest, y.digest))
        ma, mb = parse(published.manifest(x.digest)), parse(rebuilt.manifest(y.digest))
        if isinstance(ma, Manifest) and isinstance(mb, Manifest):
            rows += _manifest(published, rebuilt, ma, mb, platform)
    return rows


def _manifest(
    published: ImageSource, rebuilt: ImageSource, a: Manifest, b: Manifest, where: str
) -> list[Row]:
    rows: list[Row] = []
    if a.annotations != b.annotations:
        rows.append(Row("Manifest", f"{where} annotations", _short(a.annotations), _short(b.annotations)))
    return rows + _config(published, rebuilt, a, b, where) + _layers(published, rebuilt, a, b, where)


def table(rows: list[Row]) -> str:
    """The rows as diffoci prints them: TYPE NAME INPUT-0 INPUT-1."""
    lines = [f"{'TYPE':<9} {'NAME':<40} {'PUBLISHED':<40} REBUILT"]
    lines += [f"{r.kind:<9} {r.name:<40} {r.published:<40} {r.rebuilt}" for r in rows]
    return "\n".join(lines)

"""The build info a Go binary carries (what ``go version -m`` prints), read without running Go.

Since Go 1.18 a binary holds, in its data, the 32-byte header ``\\xff Go buildinf:`` + pointer size +
flags, then (flag 0x2, "inline") two length-prefixed strings: the Go version and the module info.
The module info, between two 16-byte sentinels, is lines of tab-separated fields: ``path``, ``mod``,
``dep`` (each followed by a ``=>`` line when replaced) and ``build`` settings. Stripping (``-s -w``)
keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import ImageError

MAGIC = b"\xff Go buildinf:"
HEADER = 32
FLAG_INLINE = 0x2


@dataclass(frozen=True)
class Module:
    path: str
    version: str
    sum: str = ""


@dataclass(frozen=True)
class BuildInfo:
    go_version: str  # "go1.27.3"
    path: str  # the main package's import path
    main: Module | None
    deps: tuple[Module, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)


def _uvarint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while at < len(data):
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
        if shift > 63:
            break
    raise ValueError("bad varint")


def _string(data: bytes, at: int) -> tuple[str, int]:
    size, at = _uvarint(data, at)
    if at + size > len(data):
        raise ValueError("string runs past the end")
    return data[at : at + size].decode("utf-8", "replace"), at + size


def parse_modinfo(text: str) -> tuple[str, Module | None, tuple[Module, ...], dict[str, str]]:
    """The main package path, main module, dependencies (replacements applied) and build settings."""
    if len(text) >= 33 and text[-17] == "\n":
        text = text[16:-16]
    path, main = "", None
    deps: list[Module] = []
    settings: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split("\t")
        kind = fields[0]
        if kind == "path" and len(fields) > 1:
            path = fields[1]
        elif kind in ("mod", "dep") and len(fields) > 2:
            module = Module(fields[1], fields[2], fields[3] if len(fields) > 3 else "")
            if kind == "mod":
                main = module
            else:
                deps.append(module)
        elif kind == "=>" and len(fields) > 2 and deps:
            deps[-1] = Module(fields[1], fields[2], fields[3] if len(fields) > 3 else "")
        elif kind == "build" and len(fields) > 1:
            key, _, value = fields[1].partition("=")
            settings[key] = value
    return path, main, tuple(deps), settings


def parse(data: bytes, where: str = "the binary") -> BuildInfo:
    """The build info in a Go binary's bytes; ImageError when it has none this reader understands."""
    at = data.find(MAGIC)
    while at >= 0:
        if at + HEADER <= len(data) and data[at + 15] & FLAG_INLINE:
            try:
                version, next_at = _string(data, at + HEADER)
                modinfo, _ = _string(data, next_at)
            except ValueError:
                pass
            else:
                if version.startswith("go"):
                    path, main, deps, settings = parse_modinfo(modinfo)
                    return BuildInfo(version, path, main, deps, settings)
        at = data.find(MAGIC, at + 1)
    raise ImageError(
        f"{where} carries no Go build info (not a Go 1.18+ binary)",
        hint="only Go binaries built by Go 1.18 or later can be described from their build info",
    )


def read(path: Path) -> BuildInfo:
    return parse(path.read_bytes(), str(path))

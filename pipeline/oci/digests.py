"""Content digests (``algorithm:encoded``), as the OCI image spec defines them."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import ImageError

# Matched whole (fullmatch) and ASCII only: "sha256:<hex>\n" is not a digest.
_DIGEST = re.compile(r"(?P<algorithm>[a-z0-9]+(?:[.+_-][a-z0-9]+)*):(?P<encoded>[a-zA-Z0-9=_-]+)", re.ASCII)
_HEX = re.compile(r"[0-9a-f]+", re.ASCII)
_LENGTHS = {"sha256": 64, "sha512": 128}
CHUNK = 1 << 20


def validate(digest: str) -> str:
    """Return ``digest`` if it is a well-formed sha256 or sha512 digest, else raise ImageError."""
    match = _DIGEST.fullmatch(digest) if isinstance(digest, str) else None
    if not match:
        raise ImageError(f"{digest!r} is not a digest (expected sha256:<64 hex digits>)")
    algorithm, encoded = match.group("algorithm"), match.group("encoded")
    length = _LENGTHS.get(algorithm)
    if length is None:
        raise ImageError(f"digest {digest!r} uses an unsupported algorithm {algorithm!r}")
    if len(encoded) != length or not _HEX.fullmatch(encoded):
        raise ImageError(f"digest {digest!r} is not {length} lowercase hex digits")
    return digest


def encoded(digest: str) -> str:
    """The hex part of a digest."""
    return validate(digest).split(":", 1)[1]


def algorithm(digest: str) -> str:
    return validate(digest).split(":", 1)[0]


def of_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def of_stream(stream: BinaryIO) -> tuple[str, int]:
    """Digest and size of everything left in ``stream``."""
    hasher = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        hasher.update(chunk)
        size += len(chunk)
    return "sha256:" + hasher.hexdigest(), size


def of_file(path: Path) -> tuple[str, int]:
    with open(path, "rb") as handle:
        return of_stream(handle)


class Verifier:
    """Checks streamed content against an expected digest (and size)."""

    def __init__(self, expected: str, size: int | None = None) -> None:
        self.expected = validate(expected)
        self._hasher = hashlib.new(algorithm(expected))
        self.size = size
        self.count = 0

    def update(self, chunk: bytes) -> None:
        self._hasher.update(chunk)
        self.count += len(chunk)

    @property
    def actual(self) -> str:
        return f"{algorithm(self.expected)}:{self._hasher.hexdigest()}"

    def ok(self) -> bool:
        return self.actual == self.expected and (self.size is None or self.count == self.size)

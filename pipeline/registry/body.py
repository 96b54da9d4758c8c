"""Request bodies: bytes, or a file (or a slice of one) re-opened on each attempt, never a consumed stream."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

BLOCK = 1 << 20


@dataclass(frozen=True)
class FileBody:
    """A request body read from a file, re-opened for every attempt (so retries can replay it)."""

    path: Path
    offset: int = 0
    length: int | None = None

    def size(self) -> int:
        if self.length is not None:
            return self.length
        return os.path.getsize(self.path) - self.offset


Body = bytes | FileBody
OnBytes = Callable[[int], None]


class Reader:
    """File-like body for requests: known length (so no chunked encoding), counts what was sent."""

    def __init__(self, handle: BinaryIO, length: int, on_bytes: OnBytes | None) -> None:
        self._handle = handle
        self._left = length
        self._length = length
        self._on_bytes = on_bytes

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = BLOCK if size is None or size < 0 else max(size, BLOCK)
        chunk = self._handle.read(min(size, self._left))
        self._left -= len(chunk)
        if self._on_bytes is not None and chunk:
            self._on_bytes(len(chunk))
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(BLOCK):
            yield chunk


def sliced(body: Body, offset: int, length: int) -> Body:
    """``length`` bytes of ``body`` from ``offset`` (a chunk of a chunked upload)."""
    if isinstance(body, FileBody):
        return FileBody(body.path, body.offset + offset, length)
    return body[offset : offset + length]

"""Images a run borrows from an image storage (podman's), shared safely with every other run on the machine.

A run that needs an image holds a lease on it for as long as it needs it. Leases are on the image's
id, not on the name a run asked for: podman finds an image by any name or digest it was ever pulled
by, so one reproducible executor pulled from two registries, or by its index digest and by its
platform manifest's digest, is one image, and a run may use it under a name another run pulled.

- A run that asks for a name podman does not find pulls it; the name is then recorded as one a run
  added, and the image as one a run brought into storage if its id was not there before the pull.
- When the last lease on an id ends, the names runs added are untagged, and the image is removed
  (``podman rmi ID``, never forced) only if a run brought it in and no name is left on it. A name or
  an image that was there before (the user's own) is never removed.

Every step (the check, the pull, the removal, taking and ending a lease) holds one lock,
``storage.lock``, in a directory beside podman's storage (its run root), so every process that uses
that storage sees the others, whatever its cache directory. Per image id:

- ``ID.users``: held shared (``flock``) by every run that holds a lease; the last lease is the one that
  can then hold it exclusively;
- ``ID.names``: the names runs added to the image, one a line;
- ``ID.pulled``: exists while the image is there because a run brought it in.

A run that dies loses its locks with its process; what it added goes with the next lease that ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

from pipeline.errors import ToolError

DIRECTORY = "kaniko-pipeline-leases"
LOCK = "storage.lock"


class ImageStorage(Protocol):
    """What leases need of an image storage (podman's: pipeline/services/imagestorage.py)."""

    def image_id(self, name: str) -> str | None:
        """The id of the image ``name`` finds, None when it finds none."""

    def image_ids(self) -> frozenset[str]:
        """The ids of every image in storage."""

    def pull(self, name: str) -> str:
        """Pull ``name``; returns the image's id."""

    def names(self, image_id: str) -> Sequence[str]:
        """The names (tags and digest references) on the image."""

    def untag(self, image_id: str, name: str) -> None:
        """Take ``name`` off the image (nothing if it is not on it)."""

    def remove(self, image_id: str) -> None:
        """Remove the image, unless something (a name, a container) still uses it."""


class Leases:
    """Leases on the images of one storage; ``directory`` holds the lock files."""

    def __init__(self, directory: Path, storage: ImageStorage) -> None:
        self.directory = Path(directory)
        self.storage = storage

    def _open(self, path: Path) -> int:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise ToolError(
                f"cannot keep track of the images this run uses in {self.directory}: {exc.strerror or exc}",
                hint="that directory must be writable by this user; remove it if it is left from another user",
            ) from exc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The storage's one lock: no other run checks, pulls, untags or removes meanwhile."""
        fd = self._open(self.directory / LOCK)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # and with it the lock

    def _path(self, image_id: str, suffix: str) -> Path:
        return self.directory / f"{image_id.removeprefix('sha256:')}{suffix}"

    def _add_name(self, image_id: str, name: str) -> None:
        if name not in self._names(image_id):
            with self._path(image_id, ".names").open("a", encoding="utf-8") as handle:
                handle.write(name + "\n")

    def _names(self, image_id: str) -> list[str]:
        path = self._path(image_id, ".names")
        return path.read_text(encoding="utf-8").split() if path.is_file() else []

    @contextlib.contextmanager
    def hold(self, name: str) -> Iterator[bool]:
        """The image ``name`` finds, in storage for the duration of the block (pulled when podman does
        not find it), whatever other runs do meanwhile. Yields whether this run pulled it."""
        with self._locked():
            image_id = self.storage.image_id(name)
            pulled = image_id is None
            if image_id is None:
                before = self.storage.image_ids()
                image_id = self.storage.pull(name)
                self._add_name(image_id, name)
                if image_id not in before:
                    self._path(image_id, ".pulled").touch(mode=0o600)
            user_fd = self._open(self._path(image_id, ".users"))
            fcntl.flock(user_fd, fcntl.LOCK_SH)  # never blocks: a LOCK_EX is only tried, under the lock
        try:
            yield pulled
        finally:
            with self._locked():
                fcntl.flock(user_fd, fcntl.LOCK_UN)
                self._end_if_unused(image_id, user_fd)
                os.close(user_fd)

    def discard(self, name: str, *, pulled_or_not: bool = False) -> None:
        """Now, if no run holds a lease on the image ``name`` finds: untag the names runs added to it and
        remove it if a run brought it in (a clean-up after a failed run). ``pulled_or_not``: ``name`` and
        the image are the caller's to remove (it put them there), now if no run holds the image, else
        when the last lease on it ends; the image stays while another name is on it."""
        with self._locked():
            image_id = self.storage.image_id(name)
            if image_id is None:
                return
            if pulled_or_not:
                if not image_id.startswith(name.removeprefix("sha256:")):
                    self._add_name(image_id, name)
                self._path(image_id, ".pulled").touch(mode=0o600)
            user_fd = self._open(self._path(image_id, ".users"))
            try:
                self._end_if_unused(image_id, user_fd)
            finally:
                os.close(user_fd)

    def _end_if_unused(self, image_id: str, user_fd: int) -> None:
        """With the storage locked: what runs added to ``image_id`` goes, if no lease holds it."""
        try:
            fcntl.flock(user_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another run still uses it: the last one out cleans up
        try:
            for added in self._names(image_id):
                self.storage.untag(image_id, added)
            pulled = self._path(image_id, ".pulled")
            if pulled.exists() and not self.storage.names(image_id):
                self.storage.remove(image_id)
            for suffix in (".names", ".pulled", ".users"):  # no one else has them open: we hold the lock
                self._path(image_id, suffix).unlink(missing_ok=True)
        finally:
            fcntl.flock(user_fd, fcntl.LOCK_UN)

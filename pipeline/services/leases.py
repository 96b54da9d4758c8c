"""Images a run borrows from podman's storage, shared safely with every other run on the machine.

A run that needs an image holds a lease on it for as long as it needs it. The first run to need an
image that is not in storage pulls it and marks it as pulled by the pipeline; when the last lease on
it ends, that image is removed again. An image that was there before any run needed it (the user's
own) is never removed. So two runs of the same executor at once (two `invoke conformance --executor
REF@sha256:...`, or a release and a conformance run) never remove an image the other still uses,
and the storage is left as it was found.

Leases are ``flock`` locks on files in a directory next to podman's storage (its run root), one set
per image, so every process that uses that storage sees them, whatever its cache directory. An image
named by digest is keyed by that digest, not its repository: the same content pulled from two
registries (a reproducible executor pushed to both) is one image in podman's storage, and removing it
by either name removes it for both.

- ``NAME.lock``: held exclusively for the short steps of taking or ending a lease (the check, the
  pull, the removal);
- ``NAME.users``: held shared by every run that uses the image; a run ending its lease removes the
  image only if it can then hold it exclusively, i.e. no other run uses it;
- ``NAME.pulled``: exists while the image is there because a run pulled it.

A run that dies loses its locks with its process; its image then goes with the next lease that ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.errors import ToolError

DIRECTORY = "kaniko-pipeline-leases"


class Leases:
    """Leases on images of one podman storage; ``directory`` holds the lock files."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _paths(self, image: str) -> tuple[Path, Path, Path]:
        content = image.rpartition("@")[2] if "@sha256:" in image else image
        key = self.directory / hashlib.sha256(content.encode()).hexdigest()[:32]
        return key.with_suffix(".lock"), key.with_suffix(".users"), key.with_suffix(".pulled")

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
    def _locked(self, path: Path) -> Iterator[None]:
        fd = self._open(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # and with it the lock

    @contextlib.contextmanager
    def hold(
        self, image: str, *, exists: Callable[[], bool], pull: Callable[[], None], remove: Callable[[], None]
    ) -> Iterator[bool]:
        """``image`` in storage for the duration of the block (``pull`` when it is not ``exists``), and
        removed (``remove``) after the block when a run pulled it and no other run still holds it.
        Yields whether this run pulled it."""
        lock, users, pulled_marker = self._paths(image)
        user_fd = self._open(users)
        try:
            with self._locked(lock):
                pulled = False
                if not exists():
                    pull()
                    pulled_marker.touch(mode=0o600)
                    pulled = True
                fcntl.flock(user_fd, fcntl.LOCK_SH)  # only the lock holder ever waits for LOCK_EX
            yield pulled
        finally:
            with self._locked(lock):
                fcntl.flock(user_fd, fcntl.LOCK_UN)
                self._remove_if_unused(user_fd, pulled_marker, remove)
            os.close(user_fd)

    def discard(self, image: str, remove: Callable[[], None], *, pulled_or_not: bool = False) -> None:
        """Remove ``image`` now if a run pulled it and none holds it (a clean-up after a failed run).
        ``pulled_or_not``: remove it whoever put it there, now if no run holds it, else when the last
        lease on it ends (what a caller that put it there itself wants)."""
        lock, users, pulled_marker = self._paths(image)
        if not pulled_or_not and not pulled_marker.exists():
            return
        user_fd = self._open(users)
        try:
            with self._locked(lock):
                if pulled_or_not:
                    pulled_marker.touch(mode=0o600)
                self._remove_if_unused(user_fd, pulled_marker, remove)
        finally:
            os.close(user_fd)

    @staticmethod
    def _remove_if_unused(user_fd: int, pulled_marker: Path, remove: Callable[[], None]) -> None:
        try:
            fcntl.flock(user_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another run still uses it: the last one removes it
        try:
            if pulled_marker.exists():
                remove()
                pulled_marker.unlink(missing_ok=True)
        finally:
            fcntl.flock(user_fd, fcntl.LOCK_UN)

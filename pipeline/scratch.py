"""Private scratch directories for secrets (kaniko's Docker config, podman's auth file, git's askpass).

Each is a fresh directory of mode 0700 (``tempfile.mkdtemp``), removed when its ``with`` block ends,
also on SIGTERM (:mod:`pipeline.cli.invocation` turns the signal into an exception, so ``finally``
runs). It goes under ``$XDG_RUNTIME_DIR`` when that is a directory this user owns and no one else can
enter (a per-user tmpfs, removed at logout), else under the system's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def base() -> str | None:
    """``$XDG_RUNTIME_DIR`` when it is private to this user, else None (the system's temp dir)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if not runtime or not os.path.isabs(runtime):
        return None
    try:
        info = os.stat(runtime)
    except OSError:
        return None
    private = stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and not info.st_mode & 0o077
    return runtime if private else None


@contextmanager
def private_directory(prefix: str) -> Iterator[Path]:
    """A new 0700 directory for secrets, removed with all it holds when the block ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base()))
    try:
        os.chmod(path, 0o700)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)

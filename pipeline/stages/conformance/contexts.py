"""Build contexts as git records them, whatever the checkout's umask.

git records a file as 0644 or 0755 and no folder mode at all; a checkout's folders and files take the
user's umask (0002 gives 0775 folders), and ``git archive`` extracted as root keeps the archive's 0775.
kaniko copies a source folder's mode onto the folder that ``COPY dir/ /dir/`` creates where buildah
makes it 0755, so the same commit compared differently on two machines. Every case from git (the
repository's suite, the fork's Dockerfiles, a fetched suite) is built from its context with git's modes:
the folder itself when it already has them (a checkout made under umask 0022), else a copy made once in
the cache. A ``--cases DIR`` folder is the user's and is built as it is.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from pipeline.stages.conformance.cases import Case

USERS_OWN = "cases"  # the suite name of a --cases DIR: built as it is
DIRECTORY_MODE = 0o755
FORMAT = 1


def committed_mode(mode: int) -> int:
    """The mode git gives a path on a checkout under umask 0022 (links keep theirs)."""
    if stat.S_ISDIR(mode):
        return DIRECTORY_MODE
    if stat.S_ISREG(mode):
        return 0o755 if mode & 0o111 else 0o644
    return stat.S_IMODE(mode)


def _entries(folder: Path) -> Iterator[Path]:
    yield folder
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            yield Path(root) / name


def _differs(path: Path) -> bool:
    mode = path.lstat().st_mode
    return not stat.S_ISLNK(mode) and stat.S_IMODE(mode) != committed_mode(mode)


def has_committed_modes(folder: Path) -> bool:
    return not any(_differs(path) for path in _entries(folder))


def _key(folder: Path) -> str:
    """The copy's name: the folder's paths, kinds, committed modes, link targets and bytes."""
    digest = hashlib.sha256(f"v{FORMAT}".encode())
    for path in _entries(folder):
        mode = path.lstat().st_mode
        digest.update(f"{path.relative_to(folder)}\0{committed_mode(mode):o}\0".encode())
        if stat.S_ISLNK(mode):
            digest.update(os.readlink(path).encode())
        elif stat.S_ISREG(mode):
            digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def as_committed(folder: Path, cache_dir: Path) -> Path:
    """``folder`` with git's modes: itself when it has them, else its copy in ``cache_dir`` (kept by
    content, made whole or not at all; the original is never changed). The copy keeps the folder's name."""
    if has_committed_modes(folder):
        return folder
    target = Path(cache_dir) / "conformance" / "contexts" / _key(folder) / folder.name
    if target.is_dir():
        return target
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.parent.name}.", dir=target.parent.parent))
    try:
        copy = staging / folder.name
        shutil.copytree(folder, copy, symlinks=True)
        for path in _entries(copy):
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode):
                os.chmod(path, committed_mode(mode))
        os.chmod(staging, DIRECTORY_MODE)
        try:
            os.replace(staging, target.parent)
        except OSError:  # another run made the same copy first: use it
            if not target.is_dir():
                raise
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def committed(cases: Sequence[Case], cache_dir: Path) -> list[Case]:
    """``cases`` built from contexts with git's modes (a --cases DIR's as they are)."""
    done: dict[Path, Path] = {}
    out = []
    for case in cases:
        if case.suite == USERS_OWN or case.skip:
            out.append(case)
            continue
        if case.directory not in done:
            done[case.directory] = as_committed(case.directory, cache_dir)
        out.append(replace(case, directory=done[case.directory]))
    return out

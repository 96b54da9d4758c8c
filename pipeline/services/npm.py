"""Node packages the project ships as sources (package.json + a committed package-lock.json).

``install`` runs ``npm ci`` from the committed lockfile into the project's cache directory, once per
distinct set of files, so nothing npm downloads ever lands in the repository.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from pipeline.errors import ToolError
from pipeline.progress import Progress, Silent
from pipeline.system import require_program

_MARKER = ".npm-ci-done"


def _fingerprint(source: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix in (".js", ".json"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def install(source: Path, cache_dir: Path, *, why: str, progress: Progress | None = None) -> Path:
    """A directory holding ``source``'s .js/.json files and their node_modules (``npm ci``).

    The directory is named after a hash of those files, so a changed lockfile installs afresh; it
    is built in a temporary directory and renamed into place, so concurrent callers never see a
    half-installed one.
    """
    progress = progress or Silent()
    if not (source / "package-lock.json").is_file():
        raise ToolError(f"{source} has no package-lock.json", hint="the project checkout is incomplete")
    target = cache_dir / "node" / f"{source.name}-{_fingerprint(source)}"
    if (target / _MARKER).is_file():
        return target
    npm = require_program("npm", f"{why} needs it")
    require_program("node", f"{why} needs it")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{source.name}.", dir=target.parent))
    try:
        for path in source.iterdir():
            if path.is_file() and path.suffix in (".js", ".json"):
                shutil.copy2(path, work / path.name)
        progress.step(f"installing node packages for {why} (npm ci)")
        result = subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev"],
            cwd=work,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "NODE_ENV": "production"},
        )
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-8:])
            raise ToolError(
                f"`npm ci` for {why} failed with status {result.returncode}: {tail}",
                hint="check that the npm registry is reachable, then run again",
            )
        (work / _MARKER).write_text("ok\n", encoding="utf-8")
        try:
            os.rename(work, target)
        except OSError:
            if not (target / _MARKER).is_file():  # lost a race to a half-made dir: replace it
                shutil.rmtree(target, ignore_errors=True)
                os.rename(work, target)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return target

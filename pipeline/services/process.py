"""The lifecycle every service we start shares: stop a process for sure, read its log's last lines."""

from __future__ import annotations

import subprocess
from pathlib import Path


def stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Terminate ``process`` and wait; kill it when it does not go within ``timeout``; close its pipes."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def log_tail(path: Path, lines: int, separator: str = "\n") -> str:
    """The last ``lines`` lines of a service's log ('' when it cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return separator.join(text.splitlines()[-lines:])

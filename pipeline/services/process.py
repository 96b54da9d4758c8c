"""The lifecycle every service we start shares: stop a process for sure, read its log's last lines; and
the environment the container tools (podman, buildah) get."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path


def containers_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for podman or buildah: a DOCKER_CONFIG that holds no config.json is left out. Both take
    ``$DOCKER_CONFIG/config.json`` as their auth file and refuse to pull when it is missing ("checking
    authfile: stat ...: no such file"), where everything else reads a missing file as no credentials."""
    out = dict(env)
    folder = out.get("DOCKER_CONFIG", "").strip()
    if folder and not (Path(folder) / "config.json").is_file():
        del out["DOCKER_CONFIG"]
    return out


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

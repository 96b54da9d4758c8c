"""What the test session leaves behind: processes it started and podman images and containers it made.

Every process the tests start inherits ``KANIKO_PIPELINE_TEST_SESSION=<token>`` from the session's
environment (even registries that detach and reparent to init), so a process still alive at the end
with that token in its environment is one of ours. Podman images and containers are compared with the
ones that existed when the session started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "KANIKO_PIPELINE_TEST_SESSION"


def mark_session() -> str:
    token = secrets.token_hex(8)
    os.environ[MARKER] = token
    return token


def _podman_list(args: list[str]) -> set[str]:
    podman = shutil.which("podman")
    if podman is None:
        return set()
    result = subprocess.run(
        [podman, *args], capture_output=True, text=True, check=False, timeout=120, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        return set()
    return {line.strip() for line in result.stdout.splitlines() if line.strip()}


def podman_images() -> set[str]:
    return _podman_list(["images", "--all", "--noheading", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"])


def podman_containers() -> set[str]:
    return _podman_list(["ps", "--all", "--noheading", "--format", "{{.ID}} {{.Image}} {{.Names}}"])


def _podman_pause(cmdline: str) -> bool:
    """Rootless podman's pause process (`catatonit -P`): podman starts one per user, the first time that
    user runs podman, to hold the user's namespaces, and keeps it on purpose for the user's later podman
    commands. A test that first ran podman as an ordinary user (test_rootless) started it; it is podman's."""
    argv = cmdline.split()
    return len(argv) == 2 and Path(argv[0]).name == "catatonit" and argv[1] == "-P"


def marked_processes(token: str) -> list[str]:
    """Live processes (not zombies, not this one, not rootless podman's pause process) whose environment
    carries the session's token."""
    needle = f"{MARKER}={token}".encode()
    found: list[str] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if needle not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if state != "Z" and not _podman_pause(cmdline):
            found.append(f"pid {proc.name}: {cmdline[:200]}")
    return found


@dataclass
class Snapshot:
    """What to compare at the end: the session's process token (None: processes not checked here) and
    podman's images and containers at the start (None: podman not checked here)."""

    token: str | None
    images: set[str] | None = field(default=None)
    containers: set[str] | None = field(default=None)

    @classmethod
    def take(cls, *, processes: bool = True, podman: bool = True) -> Snapshot:
        return cls(
            mark_session() if processes else None,
            podman_images() if podman else None,
            podman_containers() if podman else None,
        )

    def leftovers(self) -> list[str]:
        out = [f"process {line}" for line in marked_processes(self.token)] if self.token else []
        if self.containers is not None:
            out += [f"podman container {line}" for line in sorted(podman_containers() - self.containers)]
        if self.images is not None:
            out += [f"podman image {line}" for line in sorted(podman_images() - self.images)]
        return out

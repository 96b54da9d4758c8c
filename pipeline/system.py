"""System programs the pipeline and its tests need, installed with apt-get on Debian and Ubuntu.

Each requirement is a program and the Debian package that provides it; a package is installed only
when its program is missing, so a program that came from elsewhere (npm bundled with another Node.js
build, say) is left alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from pipeline.errors import ToolError
from pipeline.progress import Progress, Silent

# (program on PATH, Debian package). One list, used by `invoke setup`, which .ci/run calls.
REQUIREMENTS: tuple[tuple[str, str], ...] = (
    ("git", "git"),
    ("podman", "podman"),
    ("runc", "runc"),
    ("newuidmap", "uidmap"),
    ("newgidmap", "uidmap"),
    ("slirp4netns", "slirp4netns"),
    ("fuse-overlayfs", "fuse-overlayfs"),
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("htpasswd", "apache2-utils"),
    ("node", "nodejs"),
    ("npm", "npm"),
    ("mmdebstrap", "mmdebstrap"),  # the nginx base, made without root (pipeline/services/mmdebstrap.py)
    ("update-ca-certificates", "ca-certificates"),
    ("busybox", "busybox-static"),  # the fixture busybox image of the build tests
    ("buildah", "buildah"),  # the conformance stage's reference builder
)


# Where root takes system programs from (usermod, sysctl, runuser, apt-get, podman, newuidmap): never
# from PATH, which a user's shell or a sudo configuration may have put anything in front of.
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def system_program(name: str) -> str | None:
    """``name``'s path: for root only from SYSTEM_PATH, for others from PATH and the sbin dirs."""
    return shutil.which(name, path=SYSTEM_PATH if os.geteuid() == 0 else search_path())


def search_path() -> str:
    """PATH plus the sbin directories (an ordinary user's PATH often lacks them)."""
    return os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def require_program(name: str, why: str, package: str | None = None, *, sbin: bool = False) -> str:
    """The path of the program ``name``, or a ToolError: "NAME is not installed; WHY", with a hint
    to run `invoke setup`, naming the Debian package (``package``, else the one REQUIREMENTS lists).
    ``sbin``: look in /usr/sbin and /sbin too."""
    found = shutil.which(name, path=search_path() if sbin else None)
    if found is None:
        package = package or dict(REQUIREMENTS).get(name)
        raise ToolError(
            f"{name} is not installed; {why}",
            hint="run `invoke setup` to install it" + (f" (Debian package {package})" if package else ""),
        )
    return found


def missing(requirements: tuple[tuple[str, str], ...] = REQUIREMENTS) -> list[str]:
    """The packages whose program is not on PATH (each package once, in list order)."""
    search = search_path()
    return list(dict.fromkeys(pkg for prog, pkg in requirements if shutil.which(prog, path=search) is None))


def install(
    requirements: tuple[tuple[str, str], ...] = REQUIREMENTS, progress: Progress | None = None
) -> list[str]:
    """Install what is missing (apt-get update first). Returns the packages it installed."""
    progress = progress or Silent()
    absent = missing(requirements)
    if not absent:
        progress.step("every system program the pipeline needs is installed")
        return []
    apt_get = shutil.which("apt-get", path=SYSTEM_PATH)  # it runs as root, also under sudo
    if apt_get is None:
        raise ToolError(
            "these programs are missing and this machine has no apt-get: "
            + ", ".join(prog for prog, pkg in requirements if pkg in absent),
            hint="install these packages with your system's package manager: " + " ".join(absent),
        )
    prefix: list[str] = []
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            raise ToolError(
                "installing system packages needs root, and sudo is not available",
                hint="as root, run: apt-get update && apt-get install -y " + " ".join(absent),
            )
        prefix = [sudo] if sys.stdin.isatty() else [sudo, "--non-interactive"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    progress.step("installing system packages: " + " ".join(absent))
    for argv in (
        [*prefix, apt_get, "update", "-q"],
        [*prefix, apt_get, "install", "-y", "-q", *absent],
    ):
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
            raise ToolError(
                f"`{' '.join(argv)}` failed with status {result.returncode}: {tail}",
                hint="fix the package source or install the packages by hand, then run again",
            )
    return absent

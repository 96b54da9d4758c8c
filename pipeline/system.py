"""System packages the pipeline and its tests need, installed with apt-get on Debian and Ubuntu."""

from __future__ import annotations

import os
import shutil
import subprocess

from pipeline.errors import ToolError
from pipeline.progress import Progress, Silent

# One list, used by `invoke setup` and by .ci/run (which calls `invoke setup`).
PACKAGES = (
    "git",
    "podman",
    "runc",
    "uidmap",
    "slirp4netns",
    "docker-registry",
    "skopeo",
    "apache2-utils",
    "nodejs",
    "npm",
    "debootstrap",
    "ca-certificates",
    "busybox-static",  # the fixture busybox image of the build tests
)


def missing(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """The packages dpkg does not report as installed."""
    if shutil.which("dpkg-query") is None:
        raise ToolError(
            "this machine has no dpkg-query: `invoke setup` knows only Debian and Ubuntu",
            hint="install these packages with your system's package manager: " + " ".join(packages),
        )
    absent = []
    for name in packages:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True, check=False
        )
        if "install ok installed" not in result.stdout:
            absent.append(name)
    return absent


def install(packages: tuple[str, ...] = PACKAGES, progress: Progress | None = None) -> list[str]:
    """Install what is missing (apt-get update first). Returns the packages it installed."""
    progress = progress or Silent()
    absent = missing(packages)
    if not absent:
        progress.step("all system packages are installed")
        return []
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise ToolError(
                "installing system packages needs root, and sudo is not available",
                hint="as root, run: apt-get update && apt-get install -y " + " ".join(absent),
            )
        prefix = ["sudo", "--non-interactive"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    progress.step("installing system packages: " + " ".join(absent))
    for argv in (
        [*prefix, "apt-get", "update", "-q"],
        [*prefix, "apt-get", "install", "-y", "-q", *absent],
    ):
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
            raise ToolError(
                f"`{' '.join(argv)}` failed with status {result.returncode}: {tail}",
                hint="fix the package source or install the packages by hand, then run again",
            )
    return absent

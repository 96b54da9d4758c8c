"""A Debian root filesystem as a tar, made without root: ``mmdebstrap --mode=unshare``.

mmdebstrap's unshare mode runs apt and dpkg inside a user namespace (the user's subuid/subgid ranges,
mapped with newuidmap/newgidmap), so an ordinary user can make a root filesystem; root can too, the
same way. With a fixed ``SOURCE_DATE_EPOCH`` its tar output is bit-identical from run to run and
between root and an ordinary user, for the same package versions.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline import tooloutput
from pipeline.errors import ToolError
from pipeline.progress import Progress, Silent
from pipeline.system import require_program

MODE = "unshare"


@dataclass(frozen=True)
class Recipe:
    """What goes into the root filesystem: a Debian suite, a variant and the packages to include."""

    suite: str
    packages: tuple[str, ...]
    variant: str = "minbase"

    def argv(self, program: str, out: Path) -> list[str]:
        return [
            program,
            f"--mode={MODE}",
            f"--variant={self.variant}",
            "--include=" + ",".join(self.packages),
            self.suite,
            str(out),
        ]

    def describe(self) -> str:
        return f"Debian {self.suite} {self.variant} with {', '.join(self.packages)}"


def bootstrap(recipe: Recipe, out: Path, *, epoch: int, progress: Progress | None = None) -> None:
    """Write the root filesystem of ``recipe`` to the tar ``out`` (Debian's default mirror)."""
    progress = progress or Silent()
    program = require_program("mmdebstrap", "it makes the offline nginx base image without root")
    argv = recipe.argv(program, out)
    progress.step(f"nginx base image: mmdebstrap --mode={MODE} {recipe.describe()} (about 30-80 s)")
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "DEBIAN_FRONTEND": "noninteractive"}
    try:
        # stdin is /dev/null: mmdebstrap would read sources.list lines from a pipe.
        result = subprocess.run(
            argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, timeout=1800
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError("mmdebstrap did not finish within 30 minutes", hint=_hint("")) from exc
    if result.returncode != 0:
        output = (result.stderr or "") + "\n" + (result.stdout or "")
        raise ToolError(
            tooloutput.failure(f"making {recipe.describe()}", "mmdebstrap", result.returncode, output),
            hint=_hint(output),
        )


def _hint(output: str) -> str:
    text = output.lower()
    if "subuid" in text or "subgid" in text or "newuidmap" in text or "unshare" in text:
        return (
            "mmdebstrap's unshare mode needs user namespaces and subuid/subgid ranges for this user: "
            "run `invoke doctor` to see what is missing, and as root `invoke setup --user "
            f"{_user()}` to fix it"
        )
    return "check that the Debian package mirror is reachable (apt's sources), then run again"


def _user() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())

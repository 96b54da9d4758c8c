"""Running parts of the pipeline as an ordinary user, from a test suite that runs as root.

`.ci/run` creates an unprivileged user with subuid/subgid ranges and names it in
KANIKO_PIPELINE_ROOTLESS_USER, with that user's own venv of the project in
KANIKO_PIPELINE_ROOTLESS_PYTHON; tests that compare a root run with a rootless run use them through
``runuser``. Files that user must read live in world-readable directories made here (pytest's own
temporary directories are private to root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import missing

USER_ENV = "KANIKO_PIPELINE_ROOTLESS_USER"
PYTHON_ENV = "KANIKO_PIPELINE_ROOTLESS_PYTHON"
PROJECT = Path(__file__).resolve().parents[2]


def user_python(user: pwd.struct_passwd) -> str:
    """A Python that ``user`` can run with the project's dependencies (root's venv may live under /root)."""
    python = os.environ.get(PYTHON_ENV, "").strip() or sys.executable
    probe = subprocess.run(
        ["runuser", "-u", user.pw_name, "--", python, "-c", "import invoke, git, sigstore"],
        cwd="/",
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        missing(
            f"{user.pw_name} cannot run {python} with the project's dependencies ({probe.stderr.strip()[-200:]}): "
            f"set {PYTHON_ENV} to the python of a venv that user can run (.ci/run makes one)"
        )
    return python


NEEDS_ROOT = "runs the same thing as root and as an ordinary user, so it needs root (.ci/run's root run)"
# The same skip, decided before any fixture is set up (an ordinary user's run would otherwise build the
# fixtures of a test it then skips).
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason=NEEDS_ROOT)


def rootless_user() -> pwd.struct_passwd:
    """The ordinary user to run things as (the test runs as root)."""
    if os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)
    name = os.environ.get(USER_ENV, "").strip()
    if not name:
        missing(f"set {USER_ENV} to an ordinary user with subuid/subgid ranges (.ci/run creates one)")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pytest.fail(f"{USER_ENV} names {name!r}, which is not a user on this machine")


@contextmanager
def shared_dir(prefix: str, owner: pwd.struct_passwd | None = None) -> Iterator[Path]:
    """A temporary directory every user can read (and ``owner`` can write), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        os.chmod(path, 0o755)
        if owner is not None:
            os.chown(path, owner.pw_uid, owner.pw_gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def give(path: Path, owner: pwd.struct_passwd) -> None:
    """``chown -R`` to ``owner``."""
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(Path(root) / name, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
    os.chown(path, owner.pw_uid, owner.pw_gid)


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment with a fresh home and none of the caller's pipeline, Docker or CI settings."""
    keep = ("PATH", "LANG", "LC_ALL", "TERM")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "/usr/bin:/bin")])
    env.update({"HOME": str(home), "PYTHONDONTWRITEBYTECODE": "1"})
    env.update(extra or {})
    return env


def run_as(
    user: pwd.struct_passwd | None,
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    timeout: float = 1200,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in the project directory as ``user`` (``runuser``), or as ourselves when None."""
    command = list(argv)
    if user is not None:
        if command[0] == sys.executable:
            command[0] = user_python(user)
        env = {**env, "PATH": os.pathsep.join([str(Path(command[0]).parent), "/usr/local/bin:/usr/bin:/bin"])}
        command = [
            shutil.which("runuser", path="/usr/sbin:/sbin:/usr/bin:/bin") or "runuser",
            "-u",
            user.pw_name,
            "--",
            "env",
            *[f"{k}={v}" for k, v in env.items()],
            *command,
        ]
    outer = dict(env) if user is None else dict(os.environ)  # runuser's `env` sets the user's environment
    return subprocess.run(
        command, cwd=PROJECT, env=outer, capture_output=True, text=True, timeout=timeout, check=False
    )

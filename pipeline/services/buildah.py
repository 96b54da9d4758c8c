"""How the pipeline runs buildah (Debian's package): private storage, the runc runtime, OCI isolation,
RUN steps on the host's network, and an XDG_RUNTIME_DIR of the user's own. The conformance stage builds
its reference images this way (pipeline/stages/conformance/builders.py), and `invoke doctor` checks that
a RUN step builds this way for the user (:func:`probe`).

Why each setting, as found on these machines:

- RUN steps get ``--network=host``: the network kaniko's RUN steps get in the conformance stage (the
  executor runs with --network=host to reach the stage's loopback registry), so both builders build in
  the same setting; and no network has to be set up, which an ordinary user's buildah cannot do: with
  OCI isolation it asks netavark for a bridge from inside its user namespace, and netavark then finds
  no iptables on the user's PATH ("netavark: No such file or directory") or may not enter the host's
  network namespace ("setns: Operation not permitted").
- Rootless, buildah gets an XDG_RUNTIME_DIR the user owns. With one the user does not own (root's,
  kept by ``su``) buildah stops ("XDG_RUNTIME_DIR ... is not owned by the current user") and runc cannot
  keep its state there; without one (a shell reached with ``su -``, as in many CI jobs) a push was seen
  to look for credentials in root's /run/containers/UID ("permission denied").
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pipeline.services.process import containers_env
from pipeline.system import search_path

ISOLATION = "oci"
NETWORK = "host"
PROBE_DOCKERFILE = "FROM scratch\nCOPY busybox /bin/sh\nRUN echo probe > /probe\n"
LOGIN_PATH = "/usr/local/bin:/usr/bin:/bin"  # an ordinary user's PATH after `su -` (no sbin)


def runtime() -> str:
    """runc when installed (crun, the default, fails on these machines: ENVIRONMENT.md), else buildah's."""
    return "runc" if shutil.which("runc") else ""


def argv(binary: str, root: Path, *args: str) -> list[str]:
    """``buildah`` with its storage (``root/storage``) and run root (``root/run``) under ``root``."""
    return [binary, f"--root={Path(root) / 'storage'}", f"--runroot={Path(root) / 'run'}", *args]


def bud_options() -> list[str]:
    """The options of every ``buildah bud`` the pipeline runs (see the module's docstring)."""
    found = runtime()
    return [f"--network={NETWORK}", *([f"--runtime={found}"] if found else [])]


def environment(root: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of buildah with storage under ``root``: ``base`` (default: ours) plus the
    isolation and, rootless, a runtime directory the user owns."""
    env = containers_env(os.environ if base is None else base)
    env["BUILDAH_ISOLATION"] = ISOLATION
    if os.geteuid() != 0:
        env["XDG_RUNTIME_DIR"] = runtime_dir(env.get("XDG_RUNTIME_DIR"), Path(root) / "xdg-run")
    return env


def runtime_dir(current: str | None, fallback: Path) -> str:
    """``current`` (the caller's XDG_RUNTIME_DIR) when it is a directory this user owns and may write,
    else ``fallback``, made private (0700)."""
    if current:
        try:
            info = os.stat(current)
            usable = stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
        except OSError:
            usable = False
        if usable and os.access(current, os.W_OK | os.X_OK):
            return current
    fallback.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(fallback, 0o700)
    return str(fallback)


def probe(binary: str, busybox: Path, user: pwd.struct_passwd) -> subprocess.CompletedProcess[str]:
    """Build a one-RUN-step image as ``user`` (with ``runuser`` when that is not us) the way the conformance
    stage builds, from a login shell's environment (no XDG_RUNTIME_DIR, no sbin on PATH), in a temporary
    directory that is removed afterwards. For `invoke doctor`."""
    work = Path(tempfile.mkdtemp(prefix="kp-buildah-probe-"))
    try:
        context, root = work / "context", work / "buildah"
        context.mkdir()
        shutil.copy2(busybox, context / "busybox")
        (context / "Dockerfile").write_text(PROBE_DOCKERFILE)
        env = {"PATH": LOGIN_PATH, "HOME": user.pw_dir, "USER": user.pw_name, "LC_ALL": "C"}
        env["BUILDAH_ISOLATION"] = ISOLATION
        if user.pw_uid != 0:
            env["XDG_RUNTIME_DIR"] = runtime_dir(None, root / "xdg-run")  # what environment() gives
        command = argv(binary, root, "bud", "--quiet", *bud_options(), str(context))
        if user.pw_uid != os.geteuid():
            for path in (work, context, *context.iterdir(), root, *root.iterdir()):
                os.chown(path, user.pw_uid, user.pw_gid)
            runuser = shutil.which("runuser", path=search_path()) or "runuser"
            command = [runuser, "-u", user.pw_name, "--", *command]
        return subprocess.run(
            command, capture_output=True, text=True, env=env, cwd="/", timeout=300, check=False
        )
    finally:
        if user.pw_uid != 0 and os.geteuid() != 0:  # buildah left files of the user's subordinate ids
            subprocess.run([binary, "unshare", "rm", "-rf", str(work)], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)

"""The doctor's checks of a user's container tools: podman's storage (driver vfs works, slowly) and
buildah (a real RUN step as that user, as the conformance stage builds)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from pipeline import tooloutput
from pipeline.services import buildah
from pipeline.services.diagnosis import DoctorCheck
from pipeline.system import SYSTEM_PATH, search_path, system_program


def podman_info_argv(user: pwd.struct_passwd) -> list[str]:
    podman = system_program("podman") or "podman"
    argv = [podman, "info", "--format=json"]
    if user.pw_uid != os.geteuid():
        argv = [shutil.which("runuser", path=SYSTEM_PATH) or "runuser", "-u", user.pw_name, "--", *argv]
    return argv


def podman_info_env(user: pwd.struct_passwd) -> dict[str, str]:
    """The environment of `podman info`: the caller's for itself; for another user (through runuser)
    only what podman needs, never root's variables (tokens, DOCKER_*, PATH entries)."""
    base = {"HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name, "LC_ALL": "C"}
    if user.pw_uid != os.geteuid():
        return {**base, "PATH": SYSTEM_PATH, "SHELL": user.pw_shell or "/bin/sh"}
    return {**os.environ, **base}


def storage_check(user: pwd.struct_passwd) -> DoctorCheck:
    if system_program("podman") is None:
        return DoctorCheck("podman storage", False, "podman is not installed", fix="invoke setup")
    env = podman_info_env(user)
    try:
        result = subprocess.run(
            podman_info_argv(user), capture_output=True, text=True, env=env, cwd="/", timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return DoctorCheck("podman storage", False, f"`podman info` did not run: {exc}", fix="invoke setup")
    if result.returncode != 0:
        detail = tooloutput.failure(
            f"`podman info` as {user.pw_name}", "podman", result.returncode, result.stderr
        )
        return DoctorCheck(
            "podman storage", False, detail, fix="fix what the checks above report, then run again"
        )
    try:
        store = json.loads(result.stdout)["store"]
        driver = str(store["graphDriverName"])
    except (ValueError, KeyError, TypeError):
        return DoctorCheck(
            "podman storage", False, "`podman info` printed no storage driver", fix="podman info"
        )
    where = store.get("graphRoot", "")
    if driver == "vfs":
        conf = Path(user.pw_dir) / ".config" / "containers" / "storage.conf"
        return DoctorCheck(
            "podman storage",
            True,
            f"driver vfs at {where}: it works, but every layer is a full copy (slow, large)",
            fix=f"printf '[storage]\\ndriver = \"overlay\"\\n' > {conf} && podman system reset --force  "
            f"(as {user.pw_name}; removes its images)",
            warning=True,
        )
    return DoctorCheck("podman storage", True, f"driver {driver} at {where}")


def buildah_check(user: pwd.struct_passwd) -> DoctorCheck:
    found = shutil.which("buildah", path=search_path())
    busybox = shutil.which("busybox", path=search_path())
    if found is None or busybox is None:
        package = "buildah" if found is None else "busybox-static"
        return DoctorCheck(
            "buildah", False, f"{package} is not installed", fix=f"apt-get install {package}  (as root)"
        )
    try:
        result = buildah.probe(found, Path(busybox), user)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return DoctorCheck("buildah", False, f"buildah did not run: {exc}", fix="invoke setup")
    if result.returncode == 0:
        return DoctorCheck(
            "buildah", True, f"builds a RUN step as {user.pw_name}, as the conformance stage does"
        )
    return DoctorCheck(
        "buildah",
        False,
        tooloutput.failure(
            f"a RUN step with buildah as {user.pw_name}", "buildah", result.returncode, result.stderr
        ),
        fix=buildah_fix(result.stderr),
    )


def buildah_fix(stderr: str) -> str:
    if "crun" in stderr or "hybrid mode" in stderr:
        return "apt-get install runc  (as root; crun fails on these machines, and buildah then uses runc)"
    return "fix what the checks above report (subuid, subgid, newuidmap, user namespaces), then run again"

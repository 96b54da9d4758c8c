"""buildah, the conformance stage's reference builder, builds RUN steps as an ordinary user in the
environments such a user really has: a login shell reached with `su -` / `runuser -l` (no XDG_RUNTIME_DIR,
no /usr/sbin on PATH, as in many CI jobs), a desktop session (its own XDG_RUNTIME_DIR), and `su` without
`-` (root's XDG_RUNTIME_DIR kept, which the user cannot write).

The case is the suite's own run-forms (FROM busybox, shell and exec form RUN steps) on the stand-in base
through a real registry, built by the stage's Buildah class in a process of that user's. Needs root and the
ordinary user `.ci/run` makes (KANIKO_PIPELINE_ROOTLESS_USER).
"""

from __future__ import annotations

import json
import os
import pwd
import sys
import tempfile
from pathlib import Path

import pytest

from pipeline.services.distribution import LocalRegistry
from tests.conftest import require_tool
from tests.support.rootless import clean_env, give, rootless_user, run_as, shared_dir

pytestmark = pytest.mark.slow
MADE = ("/shell.txt", "/exec.txt", "/touched", "/made/by/run")


@pytest.mark.parametrize("runtime_dir", ["none", "own", "root's"])
def test_an_ordinary_user_builds_run_steps_with_buildah(runtime_dir: str, registry: LocalRegistry) -> None:
    user = rootless_user()
    require_tool("buildah", "buildah is the conformance stage's reference builder")
    require_tool("busybox", "the stand-in base is Debian's busybox-static")
    with shared_dir("kp-buildah-", owner=user) as work:
        home, cache = work / "home", work / "cache"
        home.mkdir()
        cache.mkdir()
        give(work, user)
        # the user's own cache (runuser passes ours on otherwise, and buildah finds no image through a
        # cache directory it cannot read)
        extra = {"USER": user.pw_name, "LOGNAME": user.pw_name, "XDG_CACHE_HOME": str(home / ".cache")}
        if runtime_dir == "own":
            own = work / "runtime"
            own.mkdir(mode=0o700)
            os.chown(own, user.pw_uid, user.pw_gid)
            extra["XDG_RUNTIME_DIR"] = str(own)
        elif runtime_dir == "root's":
            roots = work / "root-runtime"
            roots.mkdir(mode=0o700)  # root's, as `su` without `-` keeps it
            extra["XDG_RUNTIME_DIR"] = str(roots)
        spec = {
            "cache": str(cache),
            "registry": registry.host,
            "case": "run-forms",
            "out": str(work / "image.tar"),
            "paths": list(MADE),
        }
        env = clean_env(home, extra)  # run_as gives the user a login shell's PATH: no /usr/sbin, no /sbin
        assert "XDG_RUNTIME_DIR" not in clean_env(home)
        result = run_as(user, [sys.executable, "-m", "tests.support.buildah_case", json.dumps(spec)], env)
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr[-3000:]
    report = json.loads(lines[-1])
    assert result.returncode == 0 and report["returncode"] == 0, "\n".join(report["tail"])
    assert sorted(report["files"]) == sorted(MADE), report
    assert report["files"]["/made/by/run"].startswith("dir 0755 0:0")
    assert report["files"]["/shell.txt"].startswith("file 0644 0:0 14 bytes")  # "shell form 42\n"


def test_doctor_checks_that_buildah_builds_a_run_step_for_the_user() -> None:
    """`invoke doctor --user NAME` (as root) builds a RUN step as that user the way the stage does."""
    user = rootless_user()
    require_tool("buildah", "buildah is the conformance stage's reference builder")
    require_tool("busybox", "the probe's RUN step runs Debian's busybox-static")
    env = clean_env(Path(pwd.getpwnam("root").pw_dir))
    argv = [sys.executable, "-m", "invoke", "doctor", "--user", user.pw_name, "--json"]
    result = run_as(None, argv, env, timeout=300)
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr[-2000:]
    checks = {check["name"]: check for check in json.loads(lines[-1])["checks"]}
    assert "buildah" in checks, sorted(checks)
    assert checks["buildah"]["ok"], checks["buildah"]
    assert (
        checks["buildah"]["detail"] == f"builds a RUN step as {user.pw_name}, as the conformance stage does"
    )
    assert not [path for path in Path(tempfile.gettempdir()).glob("kp-buildah-probe-*")]  # cleaned up

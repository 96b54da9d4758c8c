"""The suite's strict mode (a missing program or rootless user fails the test instead of skipping it) is
switched on by KANIKO_PIPELINE_STRICT=1, which `.ci/run` sets, and never by CI=true: every CI service sets
CI, also in jobs where nothing was prepared, and README's test command must pass there.

A real pytest run (a subprocess) of a probe that needs a program this machine does not have and the
ordinary user `.ci/run` would create, with CI=true in both runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
PROBE = """
from tests.conftest import require_tool
from tests.support.rootless import rootless_user


def test_needs_a_program():
    require_tool("kp-no-such-program", "the probe needs it")


def test_needs_the_rootless_user():
    rootless_user()
"""


def _run_probe(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(PROBE)
    clean = {
        key: value
        for key, value in os.environ.items()
        if key not in ("KANIKO_PIPELINE_STRICT", "KANIKO_PIPELINE_ROOTLESS_USER", "CI")
    }
    clean.update(env, PYTHONPATH=str(PROJECT))
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rsf", "-q", str(tmp_path)]
    return subprocess.run(
        argv, cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=120, check=False
    )


def test_ci_true_alone_skips_what_the_machine_lacks_saying_why(tmp_path: Path) -> None:
    done = _run_probe(tmp_path, CI="true")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "2 skipped" in done.stdout and "failed" not in done.stdout
    assert "kp-no-such-program is not installed" in done.stdout
    if os.geteuid() == 0:
        assert "set KANIKO_PIPELINE_ROOTLESS_USER to an ordinary user" in done.stdout
    else:
        assert "it needs root" in done.stdout


def test_strict_mode_fails_what_the_machine_lacks(tmp_path: Path) -> None:
    done = _run_probe(tmp_path, KANIKO_PIPELINE_STRICT="1")
    assert done.returncode == 1, done.stdout[-3000:]
    assert "FAILED" in done.stdout and "test_needs_a_program" in done.stdout
    assert "kp-no-such-program is not installed" in done.stdout
    assert "KANIKO_PIPELINE_STRICT=1: nothing may be missing" in done.stdout
    if os.geteuid() == 0:  # root runs the rootless tests: the user .ci/run makes must be there
        assert "2 failed" in done.stdout
    else:  # an ordinary user cannot run them at all: that is the machine, not a missing install
        assert "1 failed, 1 skipped" in done.stdout

"""`python -m tests.support.fixture_fork DIR` makes, from the command line, the fixture fork a release or
`invoke test-e2e` runs on (with the fake executor), and says how to run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.support import fixture_fork

PROJECT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _cli(target: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "tests.support.fixture_fork", str(target)]
    return subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True, timeout=300, check=False)


def test_the_cli_makes_the_fork_its_pin_and_busybox_and_prints_the_command(tmp_path: Path) -> None:
    require_tool("git", "the fixture fork is a git repository")
    require_tool("busybox", "the fixture busybox image is Debian's busybox-static")
    done = _cli(tmp_path / "fixture")
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    pin = json.loads((Path(made["fork_dir"]) / "pin.json").read_text())
    tagged = subprocess.run(
        ["git", "-C", made["fork_url"], "rev-parse", f"{fixture_fork.TAG}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert pin == {"url": made["fork_url"], "tag": fixture_fork.TAG, "commit": tagged}
    executor = (Path(made["fork_url"]) / "cmd" / "executor" / "tarball.go").read_text()
    assert "fakekaniko builds for real" in executor  # the fake executor, committed
    assert (Path(made["busybox"]) / "index.json").is_file()
    assert done.stderr.strip() == (
        f"INVOKE_PIPELINE_FORK_DIR={made['fork_dir']} invoke test-e2e --fork-url {made['fork_url']} "
        f"--busybox {made['busybox']}"
    )

    again = _cli(tmp_path / "fixture")  # never over what is there
    assert again.returncode == 2 and "DIR must not exist yet" in again.stderr

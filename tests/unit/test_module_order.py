"""tests/module_order.txt names test modules that exist, once each, and the suite runs them first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import slowest_first

ROOT = Path(__file__).resolve().parents[2]


def test_every_listed_module_exists_once() -> None:
    listed = slowest_first()
    assert len(listed) > 10
    assert len(set(listed)) == len(listed), [name for name in listed if listed.count(name) > 1]
    missing = [name for name in listed if not (ROOT / name).is_file()]
    assert not missing, f"tests/module_order.txt names modules that are gone: {missing}"


def test_collection_starts_with_the_slowest_modules_in_their_order() -> None:
    collected = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests",
            "-m",
            "not e2e",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert collected.returncode == 0, collected.stdout[-2000:] + collected.stderr[-2000:]
    modules = list(
        dict.fromkeys(line.split("::", 1)[0] for line in collected.stdout.splitlines() if "::" in line)
    )
    listed = slowest_first()
    assert modules[: len(listed)] == listed
    assert modules[len(listed) :]  # the rest follow

"""The command lines of `invoke test` and `invoke lint`: pytest with its selection and workers, and the
linters CI's lint job runs (ruff, ruff format, mypy strict, import-linter), from this environment."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import UsageError

_BIN = Path(sys.executable).parent

# name, argv: each runs from the project root and reads its settings from pyproject.toml.
LINTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ruff check", (sys.executable, "-m", "ruff", "check", ".")),
    ("ruff format --check", (sys.executable, "-m", "ruff", "format", "--check", ".")),
    ("mypy", (sys.executable, "-m", "mypy")),
    ("lint-imports", (str(_BIN / "lint-imports"),)),
)


DISTRIBUTION = ("--dist", "loadfile", "--no-loadscope-reorder")
SLOWEST_SHOWN = 25  # --durations: where the time went, printed after every run
# --quick's tests mostly wait (on local registries, servers and processes), the slow ones compile and
# build: `--workers auto` gives --quick two processes per CPU (816 tests on 2 cores, warm: 94 s, and
# 110-123 s with one per CPU) and the whole suite one per CPU.
QUICK_WORKERS_PER_CPU = 2


def workers_option(workers: str, *, per_cpu: int = 1) -> list[str]:
    """pytest-xdist's options for ``--workers``: ``0`` runs in this process; a number, or ``auto``
    (``per_cpu`` per CPU), runs that many processes, each test module (its module fixtures) in one of
    them, handed out in the order tests/conftest.py gives (the slowest modules first:
    tests/module_order.txt), not reordered by size."""
    text = str(workers).strip().lower()
    if text == "auto":
        count = "auto" if per_cpu == 1 else str(per_cpu * (os.cpu_count() or 1))
        return ["-n", count, *DISTRIBUTION]
    if not text.isdigit():
        raise UsageError(f"--workers must be a number or auto, not {workers!r}", hint="e.g. --workers 2")
    return [] if int(text) == 0 else ["-n", str(int(text)), *DISTRIBUTION]


def pytest_argv(*, unit: bool = False, quick: bool = False, k: str = "", workers: str = "auto") -> list[str]:
    """The pytest command of `invoke test`: every test but the e2e ones; --unit the unit tests only;
    --quick the unit tests and the integration tests not marked slow (with more workers per CPU)."""
    markers = "not e2e and not slow" if quick else "not e2e"
    argv = [sys.executable, "-m", "pytest", "tests/unit" if unit else "tests", "-m", markers]
    if k:
        argv += ["-k", k]
    per_cpu = QUICK_WORKERS_PER_CPU if quick else 1
    return argv + workers_option(workers, per_cpu=per_cpu) + [f"--durations={SLOWEST_SHOWN}"]


def shell(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(arg) for arg in argv)

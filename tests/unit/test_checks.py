"""The command lines behind `invoke test` and `invoke lint` (pipeline/cli/checks.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pipeline.cli import checks
from pipeline.errors import UsageError


def test_the_full_run_is_every_test_but_e2e_in_parallel_modules() -> None:
    argv = checks.pytest_argv()
    assert argv[:4] == [sys.executable, "-m", "pytest", "tests"]
    assert argv[4:] == [
        "-m",
        "not e2e",
        "-n",
        "auto",
        "--dist",
        "loadfile",
        "--no-loadscope-reorder",
        "--durations=25",
    ]


def test_quick_leaves_out_the_slow_tests_and_unit_the_integration_ones() -> None:
    quick = checks.pytest_argv(quick=True, k="tag", workers="0")
    assert quick == [
        sys.executable,
        "-m",
        "pytest",
        "tests",
        "-m",
        "not e2e and not slow",
        "-k",
        "tag",
        "--durations=25",
    ]
    assert checks.pytest_argv(unit=True, workers="2")[3:] == [
        "tests/unit",
        "-m",
        "not e2e",
        "-n",
        "2",
        "--dist",
        "loadfile",
        "--no-loadscope-reorder",
        "--durations=25",
    ]


def test_quick_runs_two_workers_per_cpu_when_auto_and_the_number_given_otherwise() -> None:
    workers = str(checks.QUICK_WORKERS_PER_CPU * (os.cpu_count() or 1))
    assert checks.pytest_argv(quick=True)[6:8] == ["-n", workers]
    assert checks.pytest_argv(quick=True, workers="3")[6:8] == ["-n", "3"]
    assert checks.pytest_argv()[6:8] == ["-n", "auto"]  # the whole suite: one per CPU


def test_a_bad_worker_count_is_named() -> None:
    with pytest.raises(UsageError, match="--workers must be a number or auto, not 'many'"):
        checks.pytest_argv(workers="many")


def test_lint_runs_the_four_checkers_ci_runs_from_this_environment() -> None:
    assert [name for name, _ in checks.LINTERS] == [
        "ruff check",
        "ruff format --check",
        "mypy",
        "lint-imports",
    ]
    for _, argv in checks.LINTERS:
        assert Path(argv[0]).is_file(), argv
    assert checks.shell(["a b", "c"]) == "'a b' c"

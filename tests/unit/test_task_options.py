"""What the tasks' --help and option errors say: no invented short flags, the option the user typed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tasks
from tests.support.cli import run_invoke


@pytest.mark.parametrize("name", sorted(tasks.ns.task_names))
def test_no_task_has_an_automatic_short_flag(name: str) -> None:
    task = tasks.ns[name]
    for argument in task.get_arguments():
        # a one-letter option that is its own name (`invoke test -k EXPR`, as pytest's -k) is on purpose
        short = [n for n in argument.names if len(n) == 1 and n != argument.name]
        assert not short, f"invoke {name}: --{argument.name} has the automatic short flag -{short[0]}"


def test_release_help_lists_each_option_by_its_long_name_only() -> None:
    result = run_invoke(["release", "--help"])
    assert result.returncode == 0, result.stderr
    options = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("-")]
    assert options, result.stdout
    assert not [line for line in options if line.startswith("--=")], result.stdout
    assert not [line for line in options if re.match(r"-[a-z] ", line)], result.stdout
    assert any(line.startswith("--report-dir=STRING") for line in options)
    assert any(line.startswith("--force") for line in options)


def test_a_bad_option_is_named_as_typed_with_its_config_key(tmp_path: Path) -> None:
    result = run_invoke(["build", "--platforms", "linux/amd64,linux/m68k"], cache=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "unknown platform 'linux/m68k' in --platforms [pipeline.platforms]" in result.stderr


def test_a_bad_config_value_is_named_by_its_key(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "INVOKE_PIPELINE_VARIANTS": "executor,fat"}
    result = run_invoke(["build"], cache=tmp_path, env=env)
    assert result.returncode == 2
    assert "unknown image variant 'fat' in pipeline.variants" in result.stderr
    assert "--variants" not in result.stderr.splitlines()[0]


def test_e2e_platforms_error_names_the_option(tmp_path: Path) -> None:
    result = run_invoke(["test-e2e", "--platforms", "linux/vax"], cache=tmp_path)
    assert result.returncode == 2
    assert "unknown platform 'linux/vax' in --platforms [pipeline.platforms]" in result.stderr

"""README's first two commands are the ones CI runs: they must stay the same."""

from __future__ import annotations

from pipeline.config import PROJECT_ROOT


def readme_commands() -> list[str]:
    text = (PROJECT_ROOT / "README.md").read_text()
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_starts_with_the_main_job_and_the_tests() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[1].endswith("invoke test")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_ci_runs_the_tests_on_an_empty_cache() -> None:
    """CI is always a first run: a fresh XDG_CACHE_HOME, exported before README's test command."""
    ci = (PROJECT_ROOT / ".ci" / "run").read_text().splitlines()
    test_line = ci.index(readme_commands()[1])
    before = "\n".join(ci[:test_line])
    assert 'XDG_CACHE_HOME="$(mktemp -d' in before
    assert "export XDG_CACHE_HOME" in before

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


# -- each option declared once (pipeline.cli.catalog), its help from there ------------------------------


@pytest.mark.parametrize("name", sorted(tasks.ns.task_names))
def test_every_option_has_the_help_of_its_one_declaration(name: str) -> None:
    task = tasks.ns[name]
    declared = {option.name: option for option in task.options}
    for _ in range(2):  # invoke's Task.get_arguments() pops its help dict; these tasks keep it
        arguments = {a.attr_name or a.name: a for a in task.get_arguments()}
        assert set(arguments) == set(declared), f"invoke {name}: options and declarations differ"
        for option, argument in arguments.items():
            assert argument.help and argument.help.strip(), f"invoke {name} --{option} has no help"
            assert argument.help == declared[option].help, f"invoke {name} --{option}"
            expected = [] if declared[option].repeatable else declared[option].default
            assert argument.default == expected, f"invoke {name} --{option}"


def test_an_option_shared_by_tasks_is_declared_once() -> None:
    from pipeline.cli import catalog

    seen: dict[tuple[str, str], object] = {}
    for name in sorted(tasks.ns.task_names):
        for option in tasks.ns[name].options:
            first = seen.setdefault((option.name, option.help), option)
            assert first is option, f"--{option.name} of invoke {name} repeats a declaration: share it"
    tables = {name for name in dir(catalog) if name.isupper() and isinstance(getattr(catalog, name), tuple)}
    used = {id(tasks.ns[name].options) for name in tasks.ns.task_names}
    assert {name for name in tables if id(getattr(catalog, name)) not in used} == set(), "unused tables"


def test_each_setting_an_option_overrides_is_a_config_key() -> None:
    from pipeline import config

    for name in sorted(tasks.ns.task_names):
        for option in tasks.ns[name].options:
            if option.setting is not None:
                assert option.setting in config.DEFAULTS, f"invoke {name} --{option.name}: {option.setting}"


def test_given_options_override_their_settings_and_empty_ones_do_not() -> None:
    from pipeline.cli import catalog
    from pipeline.cli.taskoptions import ReleaseOptions

    defaults = {option.name: option.default for option in catalog.RELEASE}
    assert ReleaseOptions.of(catalog.RELEASE, defaults).overrides() == {}
    given = ReleaseOptions.of(
        catalog.RELEASE,
        {**defaults, "prefix": ["a.io/x", "b.io/y"], "fork_url": "/m", "force": True, "ca_file": ""},
    )
    assert given.overrides() == {"prefix": ["a.io/x", "b.io/y"], "fork_url": "/m"}
    assert given.force is True and given.prefix == ["a.io/x", "b.io/y"]


@pytest.mark.parametrize("name", sorted(tasks.ns.task_names))
def test_each_task_gets_its_options_as_a_dataclass_of_the_same_names_and_types(name: str) -> None:
    """The typed options (pipeline/cli/taskoptions.py) match the task's table: a field per option, in
    its order, typed as invoke hands the value back (a repeatable option: a list, or None)."""
    import dataclasses
    import typing

    task = tasks.ns[name]
    given = task.given
    fields = [f for f in dataclasses.fields(given) if f.name != "settings_given"]
    assert [f.name for f in fields] == [option.name for option in task.options], f"invoke {name}"
    hints = typing.get_type_hints(given)
    for option in task.options:
        if option.repeatable:
            assert hints[option.name] == list[str] | None, f"invoke {name} --{option.name}"
        else:
            assert hints[option.name] is type(option.default), f"invoke {name} --{option.name}"


def test_a_misspelt_option_fails_the_type_check(tmp_path: Path) -> None:
    """What the typed options are for: mypy (strict, as `invoke lint` runs it) refuses `o.forse`."""
    import subprocess
    import sys

    body = (
        "from pipeline.cli.taskoptions import ReleaseOptions\n\n\n"
        "def body(o: ReleaseOptions) -> bool:\n    return o.forse\n"
    )
    (tmp_path / "typo.py").write_text(body)
    (tmp_path / "right.py").write_text(body.replace("o.forse", "o.force"))
    argv = [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent"]
    wrong = subprocess.run([*argv, str(tmp_path / "typo.py")], capture_output=True, text=True, check=False)
    assert wrong.returncode == 1 and '"ReleaseOptions" has no attribute "forse"' in wrong.stdout, wrong.stdout
    right = subprocess.run([*argv, str(tmp_path / "right.py")], capture_output=True, text=True, check=False)
    assert right.returncode == 0, right.stdout


def test_an_option_given_on_the_command_line_reaches_the_settings(tmp_path: Path) -> None:
    # the repeated --prefix is refused by the settings' validation, which names the option as typed
    result = run_invoke(["release", "--prefix", "x.io/a", "--prefix", "x.io/a", "--dry-run"], cache=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "--prefix [pipeline.prefix] names x.io/a more than once" in result.stderr
    assert "Traceback" not in result.stderr


def test_trust_config_is_one_option_that_overrides_its_setting_in_every_task() -> None:
    """--trust-config had three help texts and, outside release, was a keyword the stages combined with
    the setting themselves: now one declaration, and the setting is the one way it takes effect."""
    found = {
        name: option
        for name in sorted(tasks.ns.task_names)
        for option in tasks.ns[name].options
        if option.name == "trust_config"
    }
    assert set(found) == {"build-image", "release", "reproduce", "sign", "verify"}
    assert len({option.help for option in found.values()}) == 1, {n: o.help for n, o in found.items()}
    assert {option.setting for option in found.values()} == {"trust_config"}

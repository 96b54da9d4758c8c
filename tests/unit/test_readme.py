"""README's first two commands are the ones CI runs: they must stay the same."""

from __future__ import annotations

import re

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


def _readme() -> str:
    return (PROJECT_ROOT / "README.md").read_text()


def test_readme_lists_the_stages_a_release_runs() -> None:
    from pipeline.release import STAGES

    text = _readme().split("- A release runs these stages, in order: ", 1)[1].split(". ", 1)[0]
    assert re.findall(r"`([a-z-]+)`", text) == list(STAGES)


def test_readme_and_help_give_the_builds_default_output() -> None:
    import tasks
    from pipeline.config import Settings

    settings = Settings.load({"cache_dir": "/c"}, env={})
    assert settings.build_layout.relative_to(settings.cache_dir).as_posix() == "build/layout"
    assert "(default `<cache>/build/layout`)" in _readme()
    assert "(default: <cache>/build/layout)" in tasks.build.help["out"]


def test_readme_says_how_to_verify_what_the_embedded_defaults_signed() -> None:
    from pipeline.services.localsigstore import LOCAL_IDENTITY, LOCAL_ISSUER

    section = _readme().split("- Verify what a local run signed:", 1)[1].split("\n- ", 1)[0]
    assert f"--certificate-identity {LOCAL_IDENTITY}" in section
    assert f"--certificate-oidc-issuer {LOCAL_ISSUER}" in section
    assert '["signature"]["trust_config"]' in section and "runs/release.json" in section


def test_the_test_workflow_runs_the_readme_test_command_and_the_linters() -> None:
    import yaml

    workflow = yaml.safe_load((PROJECT_ROOT / ".github" / "workflows" / "test.yml").read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert set(triggers) == {"push", "pull_request"}
    scripts = {
        name: "\n".join(step.get("run", "") for step in job["steps"])
        for name, job in workflow["jobs"].items()
    }
    assert readme_commands()[1] in scripts["tests"].splitlines()
    assert all(job["runs-on"].startswith("ubuntu-") for job in workflow["jobs"].values())
    lint = scripts["lint"].splitlines()
    assert "ruff check ." in lint and "mypy" in lint


def test_readme_links_only_to_files_in_the_repository() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", _readme())
    local = [link for link in links if "://" not in link]
    assert local, "README links to the docs"
    for link in local:
        target = (PROJECT_ROOT / link).resolve()
        assert target.is_relative_to(PROJECT_ROOT), f"{link} points outside the repository"
        assert target.exists(), f"{link} does not exist"

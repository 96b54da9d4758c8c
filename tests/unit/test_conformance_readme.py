"""README's conformance tables are generated: they say what the kept run (conformance/readme-run.json)
and compare.py's known differences give, and `invoke conformance --write-readme` writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import UsageError
from pipeline.stages.conformance import readme
from pipeline.stages.conformance.result import CaseResult, ConformanceResult


def test_readme_says_what_the_kept_run_and_the_known_differences_give() -> None:
    text = readme.README.read_text(encoding="utf-8")
    assert readme.render(text, readme.sections(readme.load_run())) == text, (
        "README's conformance tables are out of date: run `invoke conformance --write-readme`"
    )
    for known in ("chown-copy-parent-owner", "moby/buildkit#640", "buildah-version-label"):
        assert known in text


def test_writing_replaces_only_the_tables_and_keeps_the_run(tmp_path: Path) -> None:
    page = tmp_path / "README.md"
    marks = "\n".join(f"{readme.begin(n)}\nold {n}\n{readme.end(n)}" for n in readme.NAMES)
    page.write_text(f"# Title\n\nbefore\n\n{marks}\n\nafter\n")
    result = ConformanceResult(
        executor="r/kaniko-executor@sha256:" + "a" * 64,
        reference="buildah",
        cases=[
            CaseResult("copy", "executor", "passed", outcome="matched"),
            CaseResult("run-as-user", "executor", "passed", outcome="matched", needs=("SETUID", "SETGID")),
            CaseResult(
                "far", "executor", "skipped", suite="buildah", reason="its base x has no offline stand-in"
            ),
        ],
        matrix={"copy": "README profile", "run-as-user": "README profile + SETUID+SETGID"},
    )
    run = tmp_path / "run.json"
    readme.write(result, readme=page, run_file=run)
    text = page.read_text()
    assert text.startswith("# Title\n\nbefore\n") and text.endswith("\n\nafter\n") and "old " not in text
    assert "| README profile + SETUID+SETGID | run-as-user |" in text
    assert "| buildah | 1 | 0 | 0 |" in text and "| repository | 2 | 2 | 2 |" in text
    assert json.loads(run.read_text())["executor"] == result.executor
    assert readme.render(text, readme.sections(readme.load_run(run))) == text


def test_a_readme_without_the_markers_is_refused_naming_them(tmp_path: Path) -> None:
    page = tmp_path / "README.md"
    page.write_text("# no tables here\n")
    with pytest.raises(UsageError, match="README has no generated 'matrix' table") as refused:
        readme.write(ConformanceResult("x", "buildah"), readme=page, run_file=tmp_path / "run.json")
    assert "<!-- conformance:matrix begin" in (refused.value.hint or "")
    assert page.read_text() == "# no tables here\n" and not (tmp_path / "run.json").exists()

"""Loading conformance cases: the repository's suite, and bad case directories refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import RecordError, UsageError
from pipeline.stages.conformance import case_checks, cases, snapshot
from pipeline.stages.conformance.stage import parse_executors

ISSUE_COVERAGE = {
    "run-forms": ["RUN echo", 'RUN ["/bin/sh"'],
    "multistage": ["COPY --from=builder", "COPY --from=0"],
    "args-env": ["ARG BASE=busybox\nARG GREETING=hello\nFROM ${BASE}", "ENV APP_DATA=${APP_HOME}"],
    "workdir": ["WORKDIR /a/b/c", "WORKDIR relative/d"],
    "add-tar": ["ADD archive.tar", "ADD plain.txt"],
    "copy-chown-chmod": ["--chown=1000:1000", "--chmod=0640"],
    "links-whiteouts": ["ln -s", "ln /d/file", "rm /d/sub/doomed", "> /replace/me"],
    "image-config": ["LABEL", "EXPOSE", "VOLUME", "USER", "ENTRYPOINT", "CMD"],
    "run-as-user": ["USER 1000:1000\nRUN"],
}


def test_the_repository_suite_loads_and_covers_the_issue_list() -> None:
    loaded = {case.name: case for case in cases.load()}
    for name, snippets in ISSUE_COVERAGE.items():
        text = (loaded[name].directory / "Dockerfile").read_text()
        for snippet in snippets:
            assert snippet in text, (name, snippet)
    assert loaded["multistage"].target == "final"
    assert loaded["args-env"].build_args == {"WHO": "world", "FROM_CLI": "from-build-arg"}
    assert (loaded["dockerignore"].directory / ".dockerignore").is_file()
    kinds = {case.kind for case in loaded.values()}
    assert kinds == set(cases.KINDS)
    assert "--reproducible" in loaded["reproducible"].args
    quick = cases.load(quick=True)
    assert 0 < len(quick) < len(loaded) and all(case.quick for case in quick)


def _case(root: Path, name: str, spec: object | None, dockerfile: bool = True) -> Path:
    path = root / name
    path.mkdir(parents=True)
    if dockerfile:
        (path / "Dockerfile").write_text("FROM scratch\n")
    if spec is not None:
        (path / "case.json").write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return path


@pytest.mark.parametrize(
    ("spec", "dockerfile", "message"),
    [
        (None, False, "has no Dockerfile"),
        ("{not json", True, "not valid JSON"),
        ([1, 2], True, "must hold a JSON object"),
        ({"colour": "red"}, True, "unknown field(s) colour"),
        ({"args": "--reproducible"}, True, '"args" must be a list of strings'),
        ({"args": ["--destination=x"]}, True, "sets --destination, which the runner sets"),
        ({"args": ["reproducible"]}, True, "each must be one --flag"),
        ({"build_args": {"A": 1}}, True, '"build_args" must be an object of strings'),
        ({"kind": "fast"}, True, "\"kind\" is 'fast'"),
        ({"checks": [{"path": "/a", "mode": "rwx"}]}, True, "checks[0].mode must be an octal string"),
        ({"checks": [{"log": "("}]}, True, "checks[0].log is not a valid regular expression"),
        ({"checks": [{"config": "User"}]}, True, 'names a config field but no "equals"'),
        ({"quick": "yes"}, True, '"quick" must be true or false'),
    ],
)
def test_a_bad_case_is_refused_naming_the_file_and_what_is_wrong(
    tmp_path: Path, spec: object | None, dockerfile: bool, message: str
) -> None:
    _case(tmp_path / "suite", "bad", spec, dockerfile)
    with pytest.raises(UsageError) as caught:
        cases.load(tmp_path / "suite")
    assert message in caught.value.message
    assert str(tmp_path / "suite" / "bad") in caught.value.message
    assert caught.value.exit_code == 2


def test_an_empty_or_missing_cases_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is not a directory of cases"):
        cases.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no case directories"):
        cases.load(tmp_path / "empty")


def test_the_executor_must_be_named_by_digest_and_variants_must_exist() -> None:
    with pytest.raises(UsageError, match="is not named by digest"):
        parse_executors("127.0.0.1:5000/kaniko-executor:latest", [], {})
    with pytest.raises(UsageError, match="unknown variant"):
        parse_executors("", ["executor", "fast"], {})
    with pytest.raises(RecordError, match="no published executor image"):
        parse_executors("", [], {})
    digest = "sha256:" + "a" * 64
    published = {"executor": f"r/e@{digest}", "debug": f"r/e@{digest}", "warmer": f"r/w@{digest}"}
    assert set(parse_executors("", ["debug", "warmer"], published)) == {"debug", "warmer"}
    assert list(parse_executors(f"r/x@{digest}", [], published)) == ["executor"]


def test_checks_report_what_was_expected_and_what_was_found() -> None:
    image = snapshot.Snapshot(
        files={"/a": snapshot.PathEntry("file", 0o644, 0, 0, 2, "0" * 64)},
        config=snapshot.normalize_config({"User": "1000"}),
    )
    spec = [
        cases.CaseCheck(path="/a", content="hi", mode=0o600, owner="1:1"),
        cases.CaseCheck(absent="/a"),
        cases.CaseCheck(path="/missing"),
        cases.CaseCheck(config="User", equals="0"),
        cases.CaseCheck(log="Using caching version"),
    ]
    failures = case_checks.evaluate(spec, image, "INFO nothing cached")
    assert failures == [
        "/a does not hold 'hi' (file 0644 0:0 2 bytes sha256:000000000000)",
        "/a has mode 0644, expected 0600",
        "/a is owned by 0:0, expected 1:1",
        "/a should be absent, found file 0644 0:0 2 bytes sha256:000000000000",
        "/missing is missing",
        "config User is '1000', expected '0'",
        "kaniko's output has no line matching 'Using caching version'",
    ]

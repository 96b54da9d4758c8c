"""Suites as pinned inputs: ``--suite`` values, fetching a suite at its commit from a real git repository
(a cached clone, extracted once), the two layouts of a suite's folder, a Go runner's own case list, and
cases that cannot run offline skipped at once with the reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pipeline.errors import ForkError, UsageError
from pipeline.registry.reference import Reference
from pipeline.stages.conformance import gorunner, layouts, stage, suites
from pipeline.stages.conformance.builders import BuilderRun
from pipeline.stages.conformance.result import CaseResult
from tests.support.gitrepos import UpstreamRepo

BUILDAH_MIRROR = Path("/work/.mirror/containers+buildah/repo")
EXECUTOR = Reference.parse("127.0.0.1:5000/kaniko-executor@sha256:" + "a" * 64)

# A runner in the shape of buildah's conformance_test.go (gofmt's layout), written for this test.
RUNNER = """package conformance

var internalTestCases = []testCase{
\t{
\t\tname:       "lone file",
\t\tdockerfile: "Dockerfile.lone",
\t},

\t{
\t\tname:       "folder with args",
\t\tcontextDir: "folder",
\t\tbuildArgs:  map[string]string{"WHO": "world", "N": "2"},
\t},

\t{
\t\tname:       "inline { braces }",
\t\tcontextDir: "folder",
\t\tdockerfileContents: strings.Join([]string{
\t\t\t"FROM scratch", // a comment
\t\t\t"COPY a.txt /b}/",
\t\t}, "\\n"),
\t},

\t{
\t\tname:         "must fail",
\t\tdockerfile:   "Dockerfile.lone",
\t\tshouldFailAt: 3,
\t},

\t{
\t\tname:       "tweaked",
\t\tcontextDir: "folder",
\t\ttweakContextDir: func(t *testing.T, contextDir, _, _ string) error {
\t\t\tname := "not: a field"
\t\t\treturn os.WriteFile(name, nil, 0o600)
\t\t},
\t},

\t{
\t\tname:            "mounts",
\t\tcontextDir:      "folder",
\t\ttransientMounts: []string{"@@TEMPDIR@@:/tmp/test"},
\t},

\t{
\t\tname:          "buildah only",
\t\tcontextDir:    "folder",
\t\twithoutDocker: true,
\t},

\t{
\t\tname:               "computed",
\t\tdockerfileContents: fmt.Sprintf("FROM %s", base),
\t},
}
"""


def test_a_go_runner_says_how_each_case_is_built() -> None:
    entries = {entry.name: entry for entry in gorunner.parse(RUNNER)}
    assert list(entries) == [
        "lone file",
        "folder with args",
        "inline { braces }",
        "must fail",
        "tweaked",
        "mounts",
        "buildah only",
        "computed",
    ]
    assert entries["lone file"].dockerfile == "Dockerfile.lone" and not entries["lone file"].skip
    assert entries["folder with args"].build_args == {"WHO": "world", "N": "2"}
    assert entries["inline { braces }"].contents == "FROM scratch\nCOPY a.txt /b}/"
    assert entries["must fail"].should_fail_at == 3
    assert "tweakContextDir" in entries["tweaked"].skip
    assert "CLI mounts" in entries["mounts"].skip
    assert "buildah only" in entries["buildah only"].skip
    assert "computes its Dockerfile in Go code" in entries["computed"].skip


def _runner_suite(root: Path) -> Path:
    data = root / "testdata"
    (data / "folder").mkdir(parents=True)
    (data / "folder" / "Dockerfile").write_text("FROM busybox\nARG WHO\nRUN echo $WHO > /who\n")
    (data / "folder" / "a.txt").write_text("a\n")
    (data / "Dockerfile.lone").write_text("FROM scratch\nCOPY Dockerfile.lone /\n")
    (root / "conformance_test.go").write_text(RUNNER)
    return data


def test_a_case_folder_suite_with_its_runner_follows_the_runner(tmp_path: Path) -> None:
    loaded = {case.name: case for case in layouts.load(_runner_suite(tmp_path), "peer")}
    lone = loaded["peer-lone-file"]
    # as buildah's runner does: the context of a lone Dockerfile holds only that file
    assert sorted(p.name for p in lone.directory.iterdir()) == ["Dockerfile.lone"]
    assert lone.dockerfile == "Dockerfile.lone" and lone.suite == "peer" and not lone.gating
    assert loaded["peer-folder-with-args"].build_args == {"WHO": "world", "N": "2"}
    inline = loaded["peer-inline-braces"]
    assert (inline.directory / "Dockerfile").read_text() == "FROM scratch\nCOPY a.txt /b}/"
    assert (inline.directory / "a.txt").is_file()  # the runner's context folder, then its Dockerfile
    assert (tmp_path / "testdata" / "folder" / "Dockerfile").read_text().startswith("FROM busybox")
    must_fail = loaded["peer-must-fail"]
    assert (
        must_fail.should_fail == "the suite expects the build to fail at line 3" and not must_fail.reference
    )
    assert "tweakContextDir" in loaded["peer-tweaked"].skip
    assert "computes its Dockerfile" in loaded["peer-computed"].skip


def test_a_case_folder_suite_without_a_runner_takes_every_dockerfile(tmp_path: Path) -> None:
    data = tmp_path / "cases"
    for folder, files in {"one": ["Dockerfile"], "two/nested": ["Dockerfile", "Dockerfile.alt"]}.items():
        (data / folder).mkdir(parents=True)
        for name in files:
            (data / folder / name).write_text("FROM scratch\nCOPY . /\n")
    (data / "Dockerfile.top").write_text("FROM mirror.gcr.io/busybox\nRUN true\n")
    loaded = {case.name: case for case in layouts.load(data, "mine")}
    assert sorted(loaded) == [
        "mine-dockerfile.top",
        "mine-one",
        "mine-two-nested",
        "mine-two-nested-dockerfile.alt",
    ]
    assert loaded["mine-two-nested-dockerfile.alt"].directory == data / "two" / "nested"
    assert loaded["mine-dockerfile.top"].skip == ""  # the Docker Hub mirror's busybox has a stand-in


def test_a_folder_of_dockerfiles_shares_its_parent_as_context_with_the_runners_arguments(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "integration" / "dockerfiles"
    folder.mkdir(parents=True)
    (folder / "Dockerfile_test_args").write_text("ARG IMG\nFROM ${IMG:-busybox}\nRUN echo $WHO\n")
    (folder / "Dockerfile_test_alpine").write_text("FROM alpine:3.20\nRUN true\n")
    (folder / "Dockerfile_test_fetch").write_text("FROM busybox\nRUN wget http://example.invalid/x\n")
    (tmp_path / "integration" / "images.go").write_text(
        'var argsMap = map[string][]string{\n\t"Dockerfile_test_args": {"WHO=me"},\n}\n'
    )
    loaded = {case.name: case for case in layouts.load(folder, "other")}
    args = loaded["other-test-args"]
    assert (
        args.directory == tmp_path / "integration" and args.dockerfile == "dockerfiles/Dockerfile_test_args"
    )
    assert args.build_args == {"WHO": "me"} and args.skip == ""
    assert "alpine:3.20 has no offline stand-in" in loaded["other-test-alpine"].skip
    assert loaded["other-test-fetch"].skip == "it needs the network (wget)"


def test_suite_values_are_checked_before_anything_runs() -> None:
    src = suites.parse("https://example.invalid/peer/builder.git@" + "b" * 40 + ":tests/data/")
    assert (src.url, src.commit, src.path, src.name) == (
        "https://example.invalid/peer/builder.git",
        "b" * 40,
        "tests/data",
        "builder-data",
    )
    with pytest.raises(UsageError, match="not a full commit SHA-1"):
        suites.parse("https://example.invalid/x.git@abc123:data")
    with pytest.raises(UsageError, match="neither a known suite nor URL@COMMIT:PATH"):
        suites.parse("buildha")
    with pytest.raises(UsageError, match="is not a folder in the repository"):
        suites.parse("/srv/x.git@" + "c" * 40 + ":../etc")
    pinned = suites.named("buildah", fork_url=None, fork_commit="", env={"KANIKO_PIPELINE_BUILDAH_URL": "/m"})
    assert pinned.url == "/m" and pinned.path == "tests/conformance/testdata"
    assert (
        len(pinned.commit) == 40 and json.loads(suites.PINS.read_text())["buildah"]["commit"] == pinned.commit
    )


def test_a_suite_is_fetched_at_its_commit_once_and_read_from_the_cache(tmp_path: Path) -> None:
    upstream = UpstreamRepo.create(tmp_path / "peer")
    _runner_suite(upstream.path / "tests")
    pinned = upstream.commit("the suite")
    upstream.write("tests/testdata/folder/Dockerfile", "FROM busybox\nRUN echo later\n")
    upstream.commit("a later change the pin does not take")
    cache = tmp_path / "cache"
    source = suites.parse(f"{upstream.path}@{pinned}:tests/testdata")
    folder = suites.fetch(source, cache)
    assert (folder / "folder" / "Dockerfile").read_text().startswith("FROM busybox\nARG WHO")
    assert (folder.parent / "conformance_test.go").is_file()  # the runner comes along
    # a checkout's modes (git archive's own umask would give 0775 folders, 0664 files: false differences)
    assert (folder / "folder").stat().st_mode & 0o777 == 0o755
    assert (folder / "folder" / "a.txt").stat().st_mode & 0o777 == 0o644
    assert len(layouts.load(folder, source.name)) == 8
    shutil.rmtree(upstream.path)  # the cache holds it now: no fetch, no clone
    assert suites.fetch(source, cache) == folder
    missing = suites.parse(f"{upstream.path}@{'d' * 40}:tests/testdata")
    with pytest.raises(UsageError, match="does not exist"):
        suites.fetch(missing, cache)


def test_a_commit_the_repository_lacks_is_refused_naming_it(tmp_path: Path) -> None:
    upstream = UpstreamRepo.create(tmp_path / "peer")
    with pytest.raises(ForkError, match=f"pinned commit {'e' * 40} is not in"):
        suites.fetch(suites.parse(f"{upstream.path}@{'e' * 40}:tests"), tmp_path / "cache")


def test_a_cases_case_on_an_unreachable_registry_is_skipped_at_once(tmp_path: Path) -> None:
    for name, text in {
        "far": "FROM registry.example.invalid/team/base:1\nRUN true\n",
        "near": "FROM busybox\nRUN true\n",
        "net": "FROM busybox\nRUN apk add curl\n",
    }.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "Dockerfile").write_text(text)
    plan = stage.plan(executors={"executor": EXECUTOR}, cases_dir=tmp_path, quick=False, reference="none")
    skips = {case.name: case.skip for case in plan.cases}
    assert skips["far"].startswith("its base registry.example.invalid/team/base:1 has no offline stand-in")
    assert skips["near"] == "" and skips["net"] == "it needs the network (apk add)"


def test_no_terminal_colour_codes_reach_the_json_or_markdown() -> None:
    run = BuilderRun(
        1, "\x1b[36mINFO\x1b[0m[0000] Retrieving image\n\x1b[31mERRO\x1b[0m[0001] boom\n", None, "", 1.0
    )
    assert "\x1b" not in run.log and run.tail() == ["INFO[0000] Retrieving image", "ERRO[0001] boom"]
    result = CaseResult("c", "executor", "failed", reason="kaniko said \x1b[31mERRO\x1b[0m")
    assert "\x1b" not in json.dumps(result.to_dict()) and "\\u001b" not in json.dumps(result.to_dict())


@pytest.mark.skipif(not BUILDAH_MIRROR.is_dir(), reason="no mirror of github.com/containers/buildah here")
def test_buildahs_own_suite_loads_from_the_mirror(tmp_path: Path) -> None:
    source = suites.named(
        "buildah", fork_url=None, fork_commit="", env={"KANIKO_PIPELINE_BUILDAH_URL": str(BUILDAH_MIRROR)}
    )
    loaded = layouts.load(suites.fetch(source, tmp_path / "cache"), "buildah")
    runnable = [case for case in loaded if not case.skip]
    assert len(loaded) > 150 and len(runnable) > 100
    assert all(case.name.startswith("buildah-") for case in loaded)
    assert any(case.should_fail for case in runnable)

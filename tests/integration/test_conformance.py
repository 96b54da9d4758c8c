"""The conformance stage against real parts: podman (the README profile), a real local registry serving the
stand-in bases, real buildah as the reference, and the fixture executor (tests/support/fakekaniko), which
really builds the smallest Dockerfiles (FROM scratch + COPY) into a --tar-path tarball and fails on anything
else. So a case passes only when the fake's image matches buildah's, a wrong file mode is found as a
difference, an unbuildable case fails with the executor's own last lines and goes through the capability
matrix, and `invoke conformance` refuses bad input with exit 2."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline.registry.reference import Reference
from pipeline.services.distribution import LocalRegistry
from pipeline.services.podman import Podman
from pipeline.stages.conformance import stage
from tests.conftest import require_tool
from tests.support.cli import run_invoke
from tests.support.gitrepos import UpstreamRepo

pytestmark = pytest.mark.slow


@pytest.fixture
def executor(fake_executor_image: Reference) -> Reference:
    return fake_executor_image


def _case(root: Path, name: str, dockerfile: str, spec: dict[str, Any] | None = None) -> None:
    path = root / name
    path.mkdir(parents=True)
    (path / "Dockerfile").write_text(dockerfile)
    (path / "hello.txt").write_text("hello\n")
    if spec is not None:
        (path / "case.json").write_text(json.dumps(spec))


def _suite(root: Path) -> Path:
    copy = 'FROM scratch\nCOPY hello.txt /hello.txt\nENTRYPOINT ["/hello"]\nLABEL purpose=conformance\n'
    checks = [
        {"path": "/hello.txt", "content": "hello\n", "mode": "0644"},
        {"config": "Entrypoint", "equals": ["/hello"]},
    ]
    _case(root, "copy", copy, {"quick": True, "checks": checks})
    _case(root, "wrong-mode", copy, {"build_args": {"FAKE_MODE": "wrongmode"}})
    _case(root, "needs-run", "FROM busybox\nRUN echo hi > /hi\n")
    _case(root, "not-today", copy, {"skip": "kept for later on purpose"})
    _case(root, "breaks-buildah", "FROM busybox\nRUN exit 3\n")  # buildah's RUN fails: nothing may be left
    return root


def _containers(podman: Podman, executor: Reference) -> list[str]:
    """The containers (name and image) that run this test's executor: podman's containers are the
    machine's, and another test (a release's conformance stage) or session may run its own meanwhile."""
    listed = podman.command(["ps", "-a", "--format={{.Names}} {{.Image}}"], what="ps").stdout
    return [line for line in listed.splitlines() if f" {executor.host}/" in line]


def test_cases_pass_fail_and_skip_for_what_the_executor_really_built(
    executor: Reference, podman: Podman, tmp_path: Path, cache_dir: Path
) -> None:
    cases = _suite(tmp_path / "cases")
    plan = stage.plan(executors={"executor": executor}, cases_dir=cases, quick=False, reference="buildah")
    result = stage.execute(plan, podman=podman, cache_dir=cache_dir)
    by_name = {case.name: case for case in result.cases}

    copy = by_name["copy"]
    assert copy.status == "passed", copy
    # buildah labels its images; that is on the known list, the case's own label is not
    assert copy.known == {"buildah-version-label": 1}

    wrong = by_name["wrong-mode"]
    assert wrong.status == "failed"
    assert wrong.differences == ("/hello.txt: mode kaniko=0600 buildah=0644",)
    assert "1 difference(s) against buildah" in wrong.reason

    run = by_name["needs-run"]
    assert run.status == "failed"
    # kaniko's (here the fixture's) own last lines say why; no extra capability helped
    assert "fakekaniko builds FROM scratch only, not FROM busybox" in run.reason
    assert result.matrix["needs-run"] == "fails (no extra capability on the list helps)"
    assert result.matrix["copy"] == "README profile"

    assert (
        by_name["not-today"].status == "skipped"
        and by_name["not-today"].reason == "kept for later on purpose"
    )
    # the fixture image ships no credential helpers: that proof fails, naming each one
    helpers = by_name["credential-helpers"]
    assert helpers.status == "failed" and "/kaniko/docker-credential-acr-env --help" in helpers.reason

    assert not result.ok
    data = result.to_dict()
    assert by_name["breaks-buildah"].status == "failed"
    # neither builder builds it (RUN exit 3): the reason says so for both, so a broken buildah never hides
    assert "buildah could not build the case (exit status 3)" in by_name["breaks-buildah"].reason
    assert data["totals"] == {"passed": 1, "failed": 4, "skipped": 1}
    assert {"name", "variant", "status", "seconds", "differences", "needs"} <= set(data["cases"][0])
    assert _containers(podman, executor) == []
    # buildah's storage keeps the stand-in bases under their Docker Hub (and its mirror's) names only, and
    # no working container
    storage = cache_dir / "conformance" / "buildah"
    buildah = [
        require_tool("buildah", "reference"),
        f"--root={storage / 'storage'}",
        f"--runroot={storage / 'run'}",
    ]
    listed = subprocess.run(
        [*buildah, "images", "--format={{.Name}}"], capture_output=True, text=True, check=True
    )
    assert set(listed.stdout.split()) == {"docker.io/library/busybox", "mirror.gcr.io/busybox"}
    working = subprocess.run([*buildah, "containers", "--quiet"], capture_output=True, text=True, check=True)
    assert working.stdout.strip() == ""


def test_invoke_conformance_prints_json_and_exits_1_when_a_case_fails(
    executor: Reference, tmp_path: Path, cache_dir: Path
) -> None:
    cases = _suite(tmp_path / "cases")
    done = run_invoke(
        [
            "conformance",
            "--executor",
            str(executor),
            "--cases",
            str(cases),
            "--quick",
            "--reference",
            "buildah",
            "--json",
        ],
        cache=cache_dir,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    data = json.loads(done.stdout)
    assert [(c["name"], c["status"]) for c in data["cases"]] == [
        ("copy", "passed"),
        ("credential-helpers", "failed"),
    ]
    assert data["ok"] is False and data["matrix"] == {"copy": "README profile"}
    assert "[1/1] executor: copy" in done.stderr  # progress names the case that runs
    assert "conformance failed: 1 passed, 1 failed, 0 skipped" in done.stderr
    assert "Traceback" not in done.stderr
    record = json.loads((cache_dir / "runs" / "last.json").read_text())
    assert record["conformance"]["totals"]["passed"] == 1


def _refused(args: list[str], cache: Path, env: dict[str, str] | None = None) -> str:
    done = run_invoke(["conformance", *args], cache=cache, env=env)
    assert done.returncode == 2, (done.returncode, done.stderr[-1500:])
    assert "Traceback" not in done.stderr and done.stdout == ""
    return done.stderr


def test_bad_input_exits_2_saying_what_is_wrong_and_starts_nothing(tmp_path: Path, cache_dir: Path) -> None:
    digest = "sha256:" + "c" * 64
    good = f"127.0.0.1:1/kaniko-executor@{digest}"
    assert "is not named by digest" in _refused(
        ["--executor", "127.0.0.1:1/kaniko-executor:latest"], cache_dir
    )

    empty = tmp_path / "no-dockerfile"
    (empty / "a-case").mkdir(parents=True)
    assert f"the case directory {empty / 'a-case'} has no Dockerfile" in _refused(
        ["--executor", good, "--cases", str(empty)], cache_dir
    )

    broken = tmp_path / "broken"
    _case(broken, "bad-json", "FROM scratch\n")
    (broken / "bad-json" / "case.json").write_text('{"args": [')
    assert "case.json: not valid JSON" in _refused(["--executor", good, "--cases", str(broken)], cache_dir)

    assert "--suite 'buildha' is neither a known suite nor URL@COMMIT:PATH" in _refused(
        ["--executor", good, "--suite", "buildha"], cache_dir
    )
    nowhere = f"{tmp_path / 'nowhere.git'}@{'d' * 40}:tests/data"
    assert "the nowhere-data suite's URL" in _refused(["--executor", good, "--suite", nowhere], cache_dir)
    assert "--cases and --suite do not go together" in _refused(
        ["--executor", good, "--suite", "repository", "--cases", str(broken)], cache_dir
    )

    bare = tmp_path / "bin"
    bare.mkdir()
    env = {**os.environ, "PATH": str(bare)}
    message = _refused(["--executor", good], cache_dir, env)
    assert "buildah is not installed" in message and "--reference none" in message
    # nothing was started: no registry process for this cache, no scratch directory left
    leftovers = subprocess.run(["pgrep", "-f", str(cache_dir)], capture_output=True, text=True, check=False)
    assert leftovers.stdout == ""


def test_a_timed_out_buildah_bud_leaves_no_container_and_no_process(
    registry: LocalRegistry, tmp_path: Path, cache_dir: Path
) -> None:
    from pipeline.registry.client import Client
    from pipeline.registry.credentials import Credentials
    from pipeline.stages.conformance import bases
    from pipeline.stages.conformance.builders import Buildah
    from pipeline.stages.conformance.cases import Case

    require_tool("buildah", "buildah is the conformance stage's reference builder")
    buildah = Buildah(tmp_path / "buildah")
    busybox = bases.busybox(cache_dir)
    with Client(credentials=Credentials.anonymous()) as client:
        bases.publish([busybox], client, registry.host)
    buildah.load_bases([busybox], registry.host)
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "Dockerfile").write_text("FROM busybox\nRUN sleep 617\n")
    run = buildah.build(Case("slow", tmp_path / "slow"), tmp_path / "slow.tar", timeout=10)
    assert run.returncode == 124 and run.tarball is None
    assert "buildah bud slow did not finish within 10 s" in run.log
    assert buildah._containers() == set()
    processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert "sleep 617" not in processes


def test_a_re_test_rebuilds_only_the_cases_that_changed(
    executor: Reference, podman: Podman, tmp_path: Path, cache_dir: Path
) -> None:
    cases = tmp_path / "cases"
    copy = 'FROM scratch\nCOPY hello.txt /hello.txt\nENTRYPOINT ["/hello"]\n'
    _case(cases, "copy", copy)
    _case(cases, "wrong-mode", copy, {"build_args": {"FAKE_MODE": "wrongmode"}})
    _case(cases, "needs-run", "FROM busybox\nRUN echo hi > /hi\n")
    plan = stage.plan(executors={"executor": executor}, cases_dir=cases, quick=False, reference="buildah")
    first = {c.name: c for c in stage.execute(plan, podman=podman, cache_dir=cache_dir).cases}
    assert not any(c.cached for c in first.values())
    (cases / "copy" / "hello.txt").write_text("hello again\n")  # this case changed; the others did not
    again = {c.name: c for c in stage.execute(plan, podman=podman, cache_dir=cache_dir).cases}
    assert again["copy"].status == "passed" and not again["copy"].cached
    for name in ("wrong-mode", "needs-run"):
        assert again[name].cached, name
        assert (again[name].status, again[name].differences, again[name].outcome) == (
            first[name].status,
            first[name].differences,
            first[name].outcome,
        )
    # remember=False builds everything again
    fresh = stage.execute(plan, podman=podman, cache_dir=cache_dir, remember=False).cases
    assert not any(c.cached for c in fresh)


def test_a_suite_in_the_forks_layout_runs_each_dockerfile_with_its_parent_as_context(
    executor: Reference, podman: Podman, tmp_path: Path, cache_dir: Path
) -> None:
    from pipeline.stages.conformance import suites

    upstream = UpstreamRepo.create(tmp_path / "peer")
    upstream.write("integration/hello.txt", "hello\n")
    upstream.write(
        "integration/dockerfiles/Dockerfile_test_copy", "FROM scratch\nCOPY hello.txt /hello.txt\n"
    )
    upstream.write("integration/dockerfiles/Dockerfile_test_run", "FROM busybox\nRUN echo hi > /hi\n")
    upstream.write("integration/dockerfiles/Dockerfile_test_far", "FROM quay.io/team/base:1\nRUN true\n")
    commit = upstream.commit("a suite")
    folder = suites.fetch(suites.parse(f"{upstream.path}@{commit}:integration/dockerfiles"), cache_dir)
    plan = stage.plan(
        executors={"executor": executor},
        cases_dir=None,
        quick=False,
        reference="buildah",
        suite_folders=[("peer", folder)],
    )
    result = stage.execute(plan, podman=podman, cache_dir=cache_dir, remember=False)
    by_name = {c.name: c for c in result.cases}
    assert set(by_name) == {"peer-test-copy", "peer-test-run", "peer-test-far"}  # no variant proofs here
    assert by_name["peer-test-copy"].status == "passed", by_name["peer-test-copy"]
    assert by_name["peer-test-copy"].outcome == "matched" and by_name["peer-test-copy"].suite == "peer"
    assert by_name["peer-test-run"].outcome == "kaniko-failed" and not by_name["peer-test-run"].gating
    assert by_name["peer-test-far"].reason.startswith("its base quay.io/team/base:1 has no offline stand-in")
    assert result.ok  # reported, not gating: nothing here passed with a previous release

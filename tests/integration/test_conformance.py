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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.registry.reference import Reference
from pipeline.services.podman import Podman
from pipeline.services.registry import LocalRegistry
from pipeline.stages.conformance import stage
from tests.conftest import require_tool
from tests.support import fakeexecutor
from tests.support.cli import run_invoke

pytestmark = pytest.mark.slow


@pytest.fixture
def executor(
    fake_binary: Path, registry: LocalRegistry, tmp_path: Path, podman: Podman
) -> Iterator[Reference]:
    require_tool("buildah", "buildah is the conformance stage's reference builder")
    ref = fakeexecutor.push(
        fake_binary, tmp_path / "executor-layout", registry.host, env=("FAKEKANIKO_BUILD=1",)
    )
    yield ref
    podman.rmi(str(ref))


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
    assert data["totals"] == {"passed": 1, "failed": 4, "skipped": 1}
    assert {"name", "variant", "status", "seconds", "differences", "needs"} <= set(data["cases"][0])
    assert _containers(podman, executor) == []
    # buildah's storage keeps the stand-in bases under their Docker Hub names only, and no working container
    storage = cache_dir / "conformance" / "buildah"
    buildah = [
        require_tool("buildah", "reference"),
        f"--root={storage / 'storage'}",
        f"--runroot={storage / 'run'}",
    ]
    listed = subprocess.run(
        [*buildah, "images", "--format={{.Name}}"], capture_output=True, text=True, check=True
    )
    assert set(listed.stdout.split()) == {"docker.io/library/busybox"}
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

    bare = tmp_path / "bin"
    bare.mkdir()
    env = {**os.environ, "PATH": str(bare)}
    message = _refused(["--executor", good], cache_dir, env)
    assert "buildah is not installed" in message and "--reference none" in message
    # nothing was started: no registry process for this cache, no scratch directory left
    leftovers = subprocess.run(["pgrep", "-f", str(cache_dir)], capture_output=True, text=True, check=False)
    assert leftovers.stdout == ""

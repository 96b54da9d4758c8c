"""Regressions gate a release: the whole release twice against a real local registry, a real local
Sigstore instance, podman and buildah, with a fixture fork whose executor is the fake executor
(tests/support/fakekaniko) and whose integration/dockerfiles hold two Dockerfiles the fake builds
exactly as buildah does. The first version releases, and its signed test result says both passed. The
second version carries a patch that makes the executor write one of them wrong: its conformance stage
reads the first release's verified test result, names that case as a regression, and the release fails
there with every rolling tag where it was."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pipeline import config, release
from pipeline.errors import ConformanceError
from pipeline.services.distribution import LocalRegistry
from pipeline.services.nginxbase import BaseImage
from tests.conftest import require_tool
from tests.support import fakeexecutor, fixture_fork
from tests.support.releasefork import pipeline_env, rolling_tags, tags_in
from tests.support.sigstore_fixtures import seed_cache

pytestmark = pytest.mark.slow

OLD, NEW = "v1.4.0", "v1.4.1"
REGRESSION = """\
--- a/cmd/executor/tarball.go
+++ b/cmd/executor/tarball.go
@@ -55,7 +55,7 @@
 \t\tif err != nil {
 \t\t\treturn err
 \t\t}
-\t\tif mode == "wrongmode" {
+\t\tif mode == "wrongmode" || strings.HasSuffix(name, "regressed.txt") {
 \t\t\thdr.Mode = 0o600
 \t\t}
 \t\thdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
"""


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def fork(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The fixture fork with two integration Dockerfiles at OLD, and the regression patch at NEW."""
    require_tool("go", "the release compiles the fixture fork")
    busybox = tmp_path / "busybox"
    digest = fixture_fork.make_busybox_layout(busybox, platforms=("linux/amd64",))
    path = tmp_path / "fork"
    fixture_fork.make_fork(path, digest, tag=OLD)
    fakeexecutor.install_into_fork(path)
    # this fork's executor builds the smallest Dockerfiles for real whenever it writes a --tar-path (the
    # conformance stage's builds), not only in an image that asks for it (build-image pushes, as before)
    main = path / "cmd" / "executor" / "main.go"
    source = main.read_text()
    assert 'ok && os.Getenv("FAKEKANIKO_BUILD") == "1"' in source
    main.write_text(source.replace('ok && os.Getenv("FAKEKANIKO_BUILD") == "1"', "ok"))
    integration = path / "integration"
    (integration / "dockerfiles").mkdir(parents=True)
    (integration / "hello.txt").write_text("hello\n")
    (integration / "regressed.txt").write_text("this one will regress\n")
    for name, source in (("test_copy", "hello.txt"), ("test_regress", "regressed.txt")):
        (integration / "dockerfiles" / f"Dockerfile_{name}").write_text(
            f"FROM scratch\nCOPY {source} /{source}\n"
        )
    fixture_fork.commit_all(path, "two integration Dockerfiles")
    _git(path, "tag", "-f", OLD)
    patch = tmp_path / "regression.patch"
    patch.write_text(REGRESSION)
    _git(path, "apply", str(patch))
    fixture_fork.commit_all(path, "a change that makes the executor write regressed.txt 0600")
    _git(path, "tag", NEW)
    pin = tmp_path / "pin"
    pin.mkdir()
    commit = _git(path, "rev-parse", NEW).strip()
    (pin / "pin.json").write_text(json.dumps({"url": str(path), "tag": NEW, "commit": commit}))
    return path, pin, busybox


def test_a_case_that_passed_with_the_previous_release_and_regresses_fails_the_release(
    fork: tuple[Path, Path, Path],
    registry: LocalRegistry,
    tmp_path: Path,
    nginx_base: BaseImage,
    nginx_image: str,
    node_cache: Path,
) -> None:
    require_tool("podman", "build-image, conformance and smoke run containers")
    require_tool("buildah", "the conformance stage compares with buildah")
    path, pin, busybox = fork
    cache = tmp_path / "cache"
    cache.mkdir()
    seed_cache(node_cache, cache)
    (cache / "nginx-base").symlink_to(nginx_base.store)
    home = tmp_path / "home"
    home.mkdir()
    env = pipeline_env(home)
    settings = config.Settings.load(
        {
            "cache_dir": str(cache),
            "fork_dir": str(pin),
            "fork_url": str(path),
            "prefix": registry.host,
            "platforms": "linux/amd64",
            "variants": "executor",
        },
        env=env,
    )

    def options(ref: str) -> release.Options:
        return release.Options(
            ref=ref,
            busybox=str(busybox),
            report_dir=tmp_path / "reports",
            smoke_image=nginx_image,
            conformance="full",
            conformance_suites=("fork",),
        )

    first = release.run(settings, options(OLD))
    assert first.status == "released", first.to_dict()
    assert first.conformance is not None
    passed = {c.name: c.status for c in first.conformance.cases if c.suite == "fork"}
    assert passed == {"fork-test-copy": "passed", "fork-test-regress": "passed"}
    before = rolling_tags(tags_in(registry))
    assert before["executor:latest"] == before["executor:v1"]

    with pytest.raises(
        ConformanceError, match="regressions: conformance/executor/fork-test-regress"
    ) as failed:
        release.run(settings, options(NEW))
    assert "rolling tags were not moved" in (failed.value.hint or "")
    assert rolling_tags(tags_in(registry)) == before  # no rolling tag moved
    reports = sorted((tmp_path / "reports").glob(f"release-{NEW}-*.json"))
    data = json.loads(reports[-1].read_text())
    stages = {s["name"]: s["status"] for s in data["stages"]}
    assert stages["conformance"] == "failed" and "rolling" not in stages
    cases = {c["name"]: c for c in data["conformance"]["cases"]}
    regressed = cases["fork-test-regress"]
    assert regressed["regression"] and regressed["previous"] == "passed" and regressed["outcome"] == "differs"
    assert regressed["differences"] == ["/regressed.txt: mode kaniko=0600 buildah=0644"]
    assert cases["fork-test-copy"]["status"] == "passed" and not cases["fork-test-copy"]["regression"]
    assert data["conformance"]["baseline"]["tag"] == OLD
    assert data["conformance"]["regressions"] == ["conformance/executor/fork-test-regress"]

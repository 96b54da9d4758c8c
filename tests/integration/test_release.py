"""The whole release against a real local registry, a real local Sigstore instance and podman, with the
fixture fork (tests/support/fixture_fork.py). Its cmd/executor is the fake executor's source
(tests/support/fakekaniko), so the executor image the release builds and publishes is the one that
build-image really runs in podman; it pushes a trivial image. Smoke checks the Debian-made nginx test
image (a seam: ``Options.smoke_image``) where it must pass, and the fake's trivial image where it must
fail."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest

from pipeline import config, record, release
from pipeline.errors import ForkError, SmokeError
from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from tests.support import workflows
from tests.support.cli import run_invoke
from tests.support.releasefork import (
    OLD,
    Fork,
    Killed,
    cli_env,
    release_options,
    rolling_tags,
    tags_in,
    verifies,
)

pytestmark = pytest.mark.slow


def test_first_run_releases_a_second_is_up_to_date_and_force_republishes_nothing(
    env: tuple[config.Settings, str], fork: Fork, registry: LocalRegistry, tmp_path: Path
) -> None:
    settings, nginx = env
    first = release.run(settings, release_options(fork, tmp_path, smoke_image=nginx))
    assert first.status == "released", first.to_dict()
    names = [stage.name for stage in first.stages]
    assert names == list(release.STAGES)
    snap = tags_in(registry)
    executor = snap["kaniko-executor"]
    assert executor["v1.2.3"] == executor["latest"] == executor["v1"] == executor["v1.2"]
    assert executor["v1.2.3-debug"] == executor["debug"] and executor["v1.2.3-slim"] == executor["slim"]
    assert snap["kaniko-warmer"]["v1.2.3"] == snap["kaniko-warmer"]["latest"]
    assert first.executor == f"{registry.host}/kaniko-executor@{executor['v1.2.3']}"
    assert first.image is not None and first.image.startswith(f"{registry.host}/kaniko-nginx@sha256:")
    assert first.smoke is not None and first.smoke["ok"]
    # the signature verifies independently of the release, with the identity it reports
    assert first.signature["identity"] == localsigstore.LOCAL_IDENTITY
    verifies(settings, first, f"{registry.host}/kaniko-warmer:v1.2.3")
    # the report: JSON and Markdown, with each stage's time and the smoke checks
    data = json.loads(Path(first.files["json"]).read_text())
    assert data["status"] == "released" and data["images"]["executor"]["digest"] == executor["v1.2.3"]
    markdown = Path(first.files["markdown"]).read_text()
    for stage in names:
        assert f"| {stage} | {'skipped' if stage == 'conformance' else 'ok'} |" in markdown
    assert "| welcome-page | pass |" in markdown and localsigstore.LOCAL_IDENTITY in markdown
    # the Debian-made base and its recipe, in both reports
    assert first.base is not None and first.base["digest"] in first.base["image"]
    assert (first.base["suite"], first.base["packages"]) == ("bookworm", "nginx-light")
    assert data["base"]["versions"].startswith("nginx-light=") and "suite bookworm" in markdown

    build_record = record.read(settings.record_file)["build"]
    layout_index = (Path(build_record["layout"]) / "index.json").stat().st_mtime_ns
    second = release.run(settings, release_options(fork, tmp_path, smoke_image=nginx))
    assert second.status == "up to date"
    assert [stage.name for stage in second.stages] == ["resolve", "check"]
    assert record.read(settings.record_file)["build"] == build_record
    assert (Path(build_record["layout"]) / "index.json").stat().st_mtime_ns == layout_index
    assert tags_in(registry) == snap

    forced = release.run(settings, release_options(fork, tmp_path, smoke_image=nginx, force=True))
    assert forced.status == "released"
    assert "build" in [stage.name for stage in forced.stages]
    assert forced.bytes_uploaded == 0
    assert {v: i["digest"] for v, i in forced.images.items()} == {
        v: i["digest"] for v, i in first.images.items()
    }
    assert [s.status for s in forced.stages if s.name == "sign"] == ["skipped"]
    after = tags_in(registry)

    def images_only(snapshot: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        # a forced run tests again: its new test results change the referrers tags (sha256-<hex>)
        return {
            repo: {tag: digest for tag, digest in tags.items() if not tag.startswith("sha256-")}
            for repo, tags in snapshot.items()
            if repo != "kaniko-nginx"
        }

    assert images_only(after) == images_only(snap)
    assert len(forced.attestations) == len(forced.images)


def test_an_older_version_does_not_move_the_rolling_tags(
    env: tuple[config.Settings, str], fork: Fork, registry: LocalRegistry, tmp_path: Path
) -> None:
    settings, nginx = env
    assert release.run(settings, release_options(fork, tmp_path, smoke_image=nginx)).status == "released"
    before = rolling_tags(tags_in(registry))
    older = release.run(settings, release_options(fork, tmp_path, ref=OLD, smoke_image=nginx))
    assert older.status == "released" and older.version == "1.2.2"
    snap = tags_in(registry)
    assert rolling_tags(snap) == before
    assert snap["kaniko-executor"]["v1.2.2"] != snap["kaniko-executor"]["v1.2.3"]
    assert older.images["executor"]["kept"] == {"v1.2": "1.2.3", "v1": "1.2.3", "latest": "1.2.3"}
    assert older.images["executor"]["tags"] == ["v1.2.2"]


def test_a_failing_smoke_test_leaves_every_rolling_tag_where_it_was(
    env: tuple[config.Settings, str], fork: Fork, registry: LocalRegistry, tmp_path: Path
) -> None:
    settings, nginx = env
    assert (
        release.run(settings, release_options(fork, tmp_path, ref=OLD, smoke_image=nginx)).status
        == "released"
    )
    before = rolling_tags(tags_in(registry))
    assert len(before) == 12
    # the fake executor's trivial image (no user, no port, no nginx) is what smoke checks now
    with pytest.raises(SmokeError, match="failed its smoke checks") as failed:
        release.run(settings, release_options(fork, tmp_path))
    assert "rolling tags were not moved" in str(failed.value)
    snap = tags_in(registry)
    assert rolling_tags(snap) == before
    assert "v1.2.3" in snap["kaniko-executor"]  # published by digest with its version tag only
    reports = sorted((tmp_path / "reports").glob("release-v1.2.3-*.json"))
    data = json.loads(reports[-1].read_text())
    assert data["status"] == "failed" and not data["smoke"]["ok"]
    assert [s["name"] for s in data["stages"]][-2:] == ["smoke", "test-result"]
    assert data["stages"][-1]["status"] == "ok" and "FAILED attached" in data["stages"][-1]["detail"]


def test_a_run_killed_between_stages_finishes_when_run_again_and_a_dry_run_changes_nothing(
    env: tuple[config.Settings, str], fork: Fork, registry: LocalRegistry, tmp_path: Path
) -> None:
    settings, nginx = env

    def kill_after_publish(stage: str) -> None:
        if stage == "publish":
            raise Killed(stage)

    with pytest.raises(Killed):
        release.run(
            settings, release_options(fork, tmp_path, smoke_image=nginx, after_stage=kill_after_publish)
        )
    partial = tags_in(registry)
    assert "v1.2.3" in partial["kaniko-executor"] and "latest" not in partial["kaniko-executor"]
    record_before = settings.record_file.read_bytes()

    dry = release.run(settings, release_options(fork, tmp_path, dry_run=True))
    assert dry.status == "dry run"
    assert tags_in(registry) == partial
    assert settings.record_file.read_bytes() == record_before
    assert dry.plan is not None and not dry.plan["up_to_date"]
    executor = dry.plan["repositories"]["executor"]
    assert executor["version_tags"] == {"v1.2.3": partial["kaniko-executor"]["v1.2.3"]}
    assert executor["rolling"]["latest"]["action"] == "move"
    assert "would move after smoke passes" in release.plan_text(dry.plan)
    # the scheduled check's answer (appended, as $GITHUB_OUTPUT and a dotenv report are): work to do
    answer = tmp_path / "check.env"
    answer.write_text("EARLIER=kept\n")
    release.run(settings, release_options(fork, tmp_path, dry_run=True, outputs=answer))
    commit = dry.plan["commit"]
    assert answer.read_text() == (
        f"EARLIER=kept\nRELEASE_WORK=true\nRELEASE_TAG=v1.2.3\nRELEASE_COMMIT={commit}\nRELEASE_VERSION=1.2.3\n"
    )
    # the check jobs of both workflows, their own commands: work to do, the same tag and commit
    for ci, outputs in _check_jobs(settings, registry, tmp_path).items():
        assert {k: v for k, v in outputs.items() if k.startswith("RELEASE_")} == {
            "RELEASE_WORK": "true", "RELEASE_TAG": "v1.2.3", "RELEASE_COMMIT": commit, "RELEASE_VERSION": "1.2.3"
        }, ci  # fmt: skip
    # the release job takes the check's tag and commit: a tag that names another commit now is refused
    # before anything is built or pushed
    with pytest.raises(ForkError) as moved:
        release.run(settings, release_options(fork, tmp_path, expect_commit="0" * 40))
    assert f"tag v1.2.3 now names commit {commit}, but the check found {'0' * 40}" in moved.value.message
    assert tags_in(registry) == partial

    resumed = release.run(settings, release_options(fork, tmp_path, smoke_image=nginx, expect_commit=commit))
    assert resumed.status == "released"
    assert resumed.bytes_uploaded == 0  # publish found every blob and manifest in place
    snap = tags_in(registry)
    assert snap["kaniko-executor"]["latest"] == partial["kaniko-executor"]["v1.2.3"]
    answer.write_text("")
    checked = release.run(settings, release_options(fork, tmp_path, dry_run=True, outputs=answer))
    assert checked.plan is not None and checked.plan["up_to_date"]
    assert answer.read_text().splitlines()[0] == "RELEASE_WORK=false"
    for ci, outputs in _check_jobs(settings, registry, tmp_path).items():
        assert outputs["RELEASE_WORK"] == "false", ci


def _check_jobs(
    settings: config.Settings, registry: LocalRegistry, tmp_path: Path
) -> dict[str, dict[str, str]]:
    """The `check` job of each workflow, run from its own commands (tests/support/workflows.py) against the
    test's registry: the CI's variables stood in by the local signer's identity and its trust root."""
    found = {}
    for ci, scripts in (
        ("github", workflows.github_scripts("check")),
        ("gitlab", workflows.gitlab_scripts("check")),
    ):
        outputs = tmp_path / f"{ci}-check.env"
        outputs.write_text("")
        env = {
            **settings.env,
            "INVOKE_PIPELINE_CACHE_DIR": str(settings.cache_dir),
            "INVOKE_PIPELINE_FORK_DIR": str(settings.fork_dir),
            "INVOKE_PIPELINE_FORK_URL": str(settings.fork_url),
            "INVOKE_PIPELINE_PLATFORMS": "linux/amd64",
            "INVOKE_PIPELINE_TRUST_CONFIG": str(settings.cache_dir / "sigstore" / "trust_config.json"),
            "RELEASE_PREFIX": registry.host,
            "RELEASE_REF": "latest",
            "RELEASE_FORCE": "false",
            "CERTIFICATE_IDENTITY": localsigstore.LOCAL_IDENTITY,
            "CERTIFICATE_OIDC_ISSUER": localsigstore.LOCAL_ISSUER,
            "GITHUB_OUTPUT": str(outputs),
        }
        workdir = tmp_path / f"{ci}-job"
        workdir.mkdir(exist_ok=True)
        ran = workflows.run(scripts, env, workdir)
        assert ran.returncode == 0, f"{ci}: {ran.stderr[-2000:]}"
        # GitLab's dotenv report is the file the script names
        dotenv = workflows.gitlab_job("check")["artifacts"]["reports"]["dotenv"]
        found[ci] = workflows.answer(outputs if ci == "github" else workdir / dotenv)
        (workdir / str(dotenv)).unlink(missing_ok=True)
    return found
    # with no busybox source, a release to a loopback registry leaves debug out and says so
    plain = release.run(settings, release.Options(dry_run=True, report_dir=tmp_path / "reports"))
    assert plain.variants == ["executor", "slim", "warmer"] and release.DEBUG_NOTE in plain.notes
    assert plain.plan is not None and "debug" not in plain.plan["repositories"]


def test_an_unreachable_fork_fails_in_seconds_and_says_how_to_use_a_mirror(tmp_path: Path) -> None:
    with socket.socket() as refused:  # a port nothing listens on
        refused.bind(("127.0.0.1", 0))
        port = refused.getsockname()[1]
    with pytest.raises(ForkError) as error:
        release.remote_tags(f"http://127.0.0.1:{port}/kaniko.git", timeout=5)
    assert "--fork-url" in str(error.value) and "KANIKO_FORK_URL" in str(error.value)

    # a server that accepts and never answers: the timeout ends the wait
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with pytest.raises(ForkError, match="did not answer within 2 s") as error:
            release.remote_tags(f"http://127.0.0.1:{silent.getsockname()[1]}/kaniko.git", timeout=2)
        assert "--fork-url" in str(error.value)
    finally:
        stop.set()
        thread.join()
        silent.close()
        for conn in held:
            conn.close()


def test_invoke_release_exits_2_for_bad_input(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "INVOKE_PIPELINE_CACHE_DIR": str(tmp_path / "cache")}
    for argv, reason in (
        (["--platforms", "linux/bogus", "--dry-run"], "unknown platform 'linux/bogus'"),
        (["--outputs", str(tmp_path / "check.env")], "--outputs answers a dry run: it goes with --dry-run"),
        (["--dry-run", "--expect-commit", "v1.2.3"], "--expect-commit 'v1.2.3' is not a full commit id"),
        (["--dry-run", "--outputs", str(tmp_path)], f"--outputs {tmp_path} is not a file in an existing"),
        (
            ["--dry-run", "--join", str(tmp_path / "nothing.json")],
            f"--join {tmp_path / 'nothing.json'} is not a file",
        ),
    ):
        refused = run_invoke(["release", *argv], env=env)
        assert refused.returncode == 2, refused.stderr
        assert reason in refused.stderr and "Traceback" not in refused.stderr
    assert not (tmp_path / "check.env").exists()


def _cli_env(fork: Fork, registry: LocalRegistry, tmp_path: Path) -> dict[str, str]:
    return cli_env(fork, registry, tmp_path / "home", tmp_path / "cache")


def test_a_release_tag_that_does_not_exist_is_bad_input_and_the_report_names_it(
    fork: Fork, registry: LocalRegistry, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    result = run_invoke(
        ["release", "--ref", "v9.9.9", "--report-dir", str(reports)], env=_cli_env(fork, registry, tmp_path)
    )
    assert result.returncode == 2, result.stderr
    assert f"the fork at {fork.path} has no release tag 'v9.9.9'" in result.stderr
    assert "Traceback" not in result.stderr
    [report] = reports.glob("release-*.json")
    data = json.loads(report.read_text())
    assert data["status"] == "failed"
    assert data["url"] == str(fork.path) and data["tag"] == "v9.9.9"
    markdown = next(reports.glob("release-*.md")).read_text()
    assert "kaniko v9.9.9: failed" in markdown and f"- fork: `{fork.path}`" in markdown


def test_the_terminal_summary_says_which_variant_was_left_out_and_why(
    fork: Fork, registry: LocalRegistry, tmp_path: Path
) -> None:
    """A loopback release with no busybox source leaves debug out: the terminal says so, not only the report."""
    result = run_invoke(
        ["release", "--dry-run", "--report-dir", str(tmp_path / "reports")],
        env=_cli_env(fork, registry, tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert f"note: {release.DEBUG_NOTE}" in result.stdout.splitlines()

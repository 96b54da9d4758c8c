"""Issue 24: one job per platform, joined by digest.

Each platform job runs the workflow file's own commands (`invoke fork`, `invoke build --platforms P`,
`invoke publish --manifests-only --record FILE`; one job from GitHub's file, one from GitLab's) in processes
of its own with a pipeline cache of its own (fork clone, compiled binaries, layers; only Go's
content-addressed build cache is the session's, which changes no output). The join is a release with
`--join` those records. Its indexes must be byte for byte those of a one-machine build of the same
platforms (a third process, a third cache), and the release must go on to the end as a built one does.
The fixture fork's busybox has one platform, so these builds leave debug out.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pipeline import config, release
from pipeline.errors import UsageError
from pipeline.services.distribution import LocalRegistry
from tests.support import workflows
from tests.support.cli import run_invoke
from tests.support.releasefork import NEW, Fork, cli_env, release_options, tags_in

pytestmark = pytest.mark.slow

PLATFORMS = ("linux/amd64", "linux/arm64")
VARIANTS = ("executor", "slim", "warmer")


def _job_env(fork: Fork, registry: LocalRegistry, root: Path, platforms: tuple[str, ...]) -> dict[str, str]:
    """A platform job's environment: a cache of its own (Go's build cache excepted), the test's registry."""
    cache = root / "cache"
    cache.mkdir(parents=True)
    (cache / "go-build").symlink_to(fork.shared / "go-build")
    env = cli_env(fork, registry, root, cache, platforms)
    return {**env, "INVOKE_PIPELINE_VARIANTS": ",".join(VARIANTS)}


def _task(args: list[str], env: dict[str, str]) -> dict[str, object]:
    ran = run_invoke([*args, "--json"], env=env, timeout=600)
    assert ran.returncode == 0, f"invoke {' '.join(args)}: {ran.stderr[-3000:]}"
    result: dict[str, object] = json.loads(ran.stdout)
    return result


def _platform_job(fork: Fork, registry: LocalRegistry, root: Path, platform: str, ci: str) -> Path:
    """The workflow's own platform job (GitHub's steps or GitLab's script, tests/support/workflows.py)."""
    env = {
        **_job_env(fork, registry, root, (platform,)),
        "PLATFORM": platform,
        "RELEASE_WORK": "true",
        "RELEASE_TAG": NEW,
        "CI_PROJECT_DIR": str(root),
    }
    scripts = workflows.github_scripts("platform") if ci == "github" else workflows.gitlab_scripts("platform")
    ran = workflows.run(scripts, env, root)
    assert ran.returncode == 0, f"{ci} platform job for {platform}: {ran.stderr[-3000:]}"
    record = root / "records" / f"{platform.replace('/', '-')}.json"
    assert json.loads(record.read_text())["platforms"] == [platform]
    return record


@pytest.mark.usefixtures("go_build_cache_arm64")  # the fork's shared Go cache, warm for arm64 too
def test_platform_jobs_joined_release_the_one_machine_builds_digests(
    env: tuple[config.Settings, str], fork: Fork, registry: LocalRegistry, tmp_path: Path
) -> None:
    settings, nginx = env
    settings = dataclasses.replace(settings, platforms=PLATFORMS, variants=VARIANTS)
    # the platform jobs as the workflows run them: amd64 from GitHub's file, arm64 from GitLab's
    records = [
        _platform_job(fork, registry, tmp_path / f"{ci}-{n}", p, ci)
        for n, (p, ci) in enumerate(zip(PLATFORMS, ("github", "gitlab"), strict=True))
    ]
    # platform jobs push images by digest only: no tag, no index yet
    assert tags_in(registry) == {"kaniko-executor": {}, "kaniko-warmer": {}}

    one = _job_env(fork, registry, tmp_path / "one-machine", PLATFORMS)
    _task(["fork", "--ref", NEW], one)
    built = _task(["build"], one)
    expected = {v: image["digest"] for v, image in built["images"].items()}  # type: ignore[attr-defined]
    # what the SBOMs and the provenance state besides the images (inputs, toolchain) is the same too
    for path in records:
        facts = json.loads(path.read_text())
        assert (facts["inputs"], facts["go"]) == (built["inputs"], built["go"])

    # a record of another commit, a platform missing: refused before anything is pushed, naming why
    other = tmp_path / "other-commit.json"
    data = json.loads(records[1].read_text())
    other.write_text(json.dumps({**data, "commit": "0" * 40}))
    for join, reason in (
        ((records[0], other), f"{other} is of 1.2.3 at 000000000000, but this release is 1.2.3 at"),
        ((records[0],), "the records do not hold the release's platforms; missing: linux/arm64"),
        ((records[0], records[0]), f"linux/amd64 is in both {records[0]} and {records[0]}"),
    ):
        with pytest.raises(UsageError) as refused:
            release.run(settings, release_options(fork, tmp_path, smoke_image=nginx, join=join))
        assert reason in refused.value.message
        assert tags_in(registry) == {"kaniko-executor": {}, "kaniko-warmer": {}}

    joined = release.run(settings, release_options(fork, tmp_path, smoke_image=nginx, join=tuple(records)))
    assert joined.status == "released", joined.to_dict()
    names = [stage.name for stage in joined.stages]
    assert "join" in names and "build" not in names
    assert {v: i["digest"] for v, i in joined.images.items()} == expected
    snap = tags_in(registry)
    assert snap["kaniko-executor"]["v1.2.3"] == snap["kaniko-executor"]["latest"] == expected["executor"]
    assert snap["kaniko-warmer"]["latest"] == expected["warmer"]
    # every blob was there from the platform jobs: the join's publish put the indexes and tags only
    assert joined.bytes_uploaded == 0

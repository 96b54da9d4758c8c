"""The scheduled release jobs build every platform the pinned busybox has: five, by default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.config import KNOWN_PLATFORMS, parse_platforms

ROOT = Path(__file__).resolve().parents[2]
FIVE = ("linux/amd64", "linux/arm64", "linux/s390x", "linux/ppc64le", "linux/riscv64")


def _release_job(path: Path, name: str = "release") -> tuple[dict[str, str], str]:
    """The workflow's variables (set once for every job) and the job's `invoke release` command."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    if path.name == ".gitlab-ci.yml":
        job = data[name]
        command = next(line for line in job["script"] if "invoke release" in line)
        return {k: str(v) for k, v in data["variables"].items()}, command
    job = data["jobs"][name]
    command = next(step["run"] for step in job["steps"] if "invoke release" in step.get("run", ""))
    return {k: str(v) for k, v in data["env"].items()}, command


@pytest.mark.parametrize("name", [".gitlab-ci.yml", ".github/workflows/release.yml"])
@pytest.mark.parametrize("job", ["publish", "conformance", "release"])
def test_the_scheduled_jobs_release_five_platforms(name: str, job: str) -> None:
    variables, command = _release_job(ROOT / name, job)
    found = re.search(r'--platforms "\$(\w+)"', command)
    assert found, f"{name}: `invoke release` gets no --platforms"
    platforms = parse_platforms(variables[found.group(1)])
    assert platforms == FIVE
    assert set(platforms) == set(KNOWN_PLATFORMS)


@pytest.mark.parametrize("name", [".gitlab-ci.yml", ".github/workflows/release.yml"])
def test_one_conformance_job_per_shard_and_the_release_joins_them_all(name: str) -> None:
    """The conformance jobs test parts 1..N of N, each writes its result, and the release joins them all."""
    data: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    _, shard = _release_job(ROOT / name, "conformance")
    _, release = _release_job(ROOT / name, "release")
    if name == ".gitlab-ci.yml":
        parts = data["conformance"]["parallel"]
        assert '--shard "$CI_NODE_INDEX/$CI_NODE_TOTAL"' in shard
        assert '--shard-result "shards/shard-$CI_NODE_INDEX.json"' in shard
        assert data["conformance"]["artifacts"]["paths"] == ["shards/"]
    else:
        parts = int(data["env"]["SHARDS"])
        assert data["jobs"]["conformance"]["strategy"]["matrix"]["shard"] == list(range(1, parts + 1))
        assert '--shard "$SHARD/$SHARDS"' in shard and '--shard-result "shards/shard-$SHARD.json"' in shard
    assert parts >= 2
    # the shards run the suite the release joins (join refuses a plan that differs, so say it here first)
    variables, _ = _release_job(ROOT / name, "release")
    assert variables["RELEASE_CONFORMANCE"] in ("full", "quick")
    assert (
        '--conformance "$RELEASE_CONFORMANCE"' in shard and '--conformance "$RELEASE_CONFORMANCE"' in release
    )
    assert "--join-shard" in release and "shards/*.json" in release and "--join " not in release
    _, publish = _release_job(ROOT / name, "publish")
    assert "--publish-only" in publish and "records/*.json" in publish


@pytest.mark.parametrize("name", [".gitlab-ci.yml", ".github/workflows/release.yml"])
def test_one_platform_job_per_released_platform(name: str) -> None:
    """The fan-out: the platform jobs' matrix is exactly what the join releases (--platforms)."""
    variables, _ = _release_job(ROOT / name)
    data: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    if name == ".gitlab-ci.yml":
        matrix = data["platform"]["parallel"]["matrix"][0]["PLATFORM"]
        script = " ".join(data["platform"]["script"])
    else:
        matrix = data["jobs"]["platform"]["strategy"]["matrix"]["platform"]
        script = " ".join(step.get("run", "") for step in data["jobs"]["platform"]["steps"])
    assert tuple(matrix) == parse_platforms(variables["RELEASE_PLATFORMS"]) == FIVE
    assert '--platforms "$PLATFORM"' in script and "--manifests-only --record" in script

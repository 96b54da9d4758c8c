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


def _release_job(path: Path) -> tuple[dict[str, str], str]:
    """The release job's variables and its `invoke release` command."""
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    if path.name == ".gitlab-ci.yml":
        job = data["release"]
        command = next(line for line in job["script"] if "invoke release" in line)
        return {k: str(v) for k, v in job["variables"].items()}, command
    job = data["jobs"]["release"]
    command = next(step["run"] for step in job["steps"] if "invoke release" in step.get("run", ""))
    return {k: str(v) for k, v in job["env"].items()}, command


@pytest.mark.parametrize("name", [".gitlab-ci.yml", ".github/workflows/release.yml"])
def test_the_scheduled_job_releases_five_platforms(name: str) -> None:
    variables, command = _release_job(ROOT / name)
    found = re.search(r'--platforms "\$(\w+)"', command)
    assert found, f"{name}: `invoke release` gets no --platforms"
    platforms = parse_platforms(variables[found.group(1)])
    assert platforms == FIVE
    assert set(platforms) == set(KNOWN_PLATFORMS)


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

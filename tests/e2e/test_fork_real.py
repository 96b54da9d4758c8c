"""The fork stage against the real kaniko fork (a local mirror named by KANIKO_FORK_URL)."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import PROJECT_ROOT
from pipeline.policy import versions
from pipeline.source import pinfile
from pipeline.stages import fork


def test_latest_release_of_the_real_fork(fork_url: str, cache_dir: Path) -> None:
    current = pinfile.load(PROJECT_ROOT / "fork" / "pin.json")
    result = fork.checkout(
        ref="latest",
        pin=current,
        url=fork_url,
        patches_dir=PROJECT_ROOT / "fork" / "patches",
        cache_dir=cache_dir,
    )
    parsed = versions.parse_tag(result.tag)
    assert parsed is not None and parsed.prerelease is None
    assert parsed >= versions.parse_tag(current.tag)  # type: ignore[operator]
    assert result.module == "github.com/chainguard-dev/kaniko"
    assert (result.path / "deploy" / "Dockerfile").is_file()
    assert (result.path / "vendor" / "modules.txt").is_file()
    if result.tag == current.tag:
        assert result.commit == current.commit

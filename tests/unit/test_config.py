from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.errors import ConfigError


def test_defaults() -> None:
    settings = Settings.load({}, env={"HOME": "/home/u"})
    assert settings.cache_dir == Path("/home/u/.cache/kaniko-pipeline")
    assert settings.platforms == ("linux/amd64", "linux/arm64")
    assert settings.variants == ("executor", "debug", "slim", "warmer")
    assert settings.pin_file.name == "pin.json"
    assert settings.fork_url is None


def test_xdg_cache_and_fork_url_from_environment() -> None:
    settings = Settings.load({}, env={"XDG_CACHE_HOME": "/x", "KANIKO_FORK_URL": "/mirror"})
    assert settings.cache_dir == Path("/x/kaniko-pipeline")
    assert settings.fork_url == "/mirror"


def test_explicit_fork_url_beats_environment() -> None:
    settings = Settings.load({"fork_url": "/a"}, env={"KANIKO_FORK_URL": "/b"})
    assert settings.fork_url == "/a"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"platforms": "linux/amd64,windows/amd64"}, "pipeline.platforms"),
        ({"platforms": ""}, "pipeline.platforms"),
        ({"variants": "executor,kaniko"}, "pipeline.variants"),
        ({"prerelease": "maybe"}, "pipeline.prerelease"),
        ({"insecure": 3}, "pipeline.insecure"),
        ({"platforms": 5}, "pipeline.platforms"),
        ({"no_such_key": 1}, "pipeline.no_such_key"),
    ],
)
def test_bad_values_are_reported_by_name(values: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.load(values, env={})
    assert named in str(info.value)
    assert info.value.exit_code == 2


def test_lists_accept_lists_and_drop_duplicates() -> None:
    settings = Settings.load({"platforms": ["linux/arm64", "linux/arm64", "linux/s390x"]}, env={})
    assert settings.platforms == ("linux/arm64", "linux/s390x")

from __future__ import annotations

import pytest

from pipeline.errors import ReleaseSelectionError
from pipeline.policy import versions


def test_numeric_not_lexical_order() -> None:
    assert versions.newest(["v1.9.2", "v1.25.16", "v1.10.0"]).tag == "v1.25.16"


def test_leading_v_is_optional() -> None:
    assert versions.newest(["1.25.16", "v1.9.2"]).tag == "1.25.16"
    assert versions.parse_tag("V2.0.0") is not None
    assert versions.parse_tag("2.0.0") == versions.parse_tag("v2.0.0")


@pytest.mark.parametrize(
    "tag",
    [
        "v",
        "latest",
        "v1.2",
        "1",
        "nightly-2024-01-01",
        "v01.2.3",
        "v1.2.3.4",
        "release-1.2.3",
        "",
        "vv1.2.3",
        "v1.2.3-",
    ],
)
def test_non_semver_tags_are_ignored(tag: str) -> None:
    assert versions.parse_tag(tag) is None
    assert versions.newest([tag, "v0.1.0"]).tag == "v0.1.0"


def test_prereleases_only_when_asked() -> None:
    tags = ["v1.25.16", "v1.26.0-rc.1", "v1.26.0-alpha"]
    assert versions.newest(tags).tag == "v1.25.16"
    assert versions.newest(tags, prerelease=True).tag == "v1.26.0-rc.1"


def test_release_beats_its_own_prerelease() -> None:
    assert versions.newest(["v1.26.0-rc.1", "v1.26.0"], prerelease=True).tag == "v1.26.0"


def test_ties_are_deterministic() -> None:
    tags = ["1.25.16", "v1.25.16+build.5", "v1.25.16"]
    for order in (tags, list(reversed(tags))):
        assert versions.newest(order).tag == "v1.25.16"


def test_no_release_is_a_clear_error() -> None:
    with pytest.raises(ReleaseSelectionError) as info:
        versions.newest(["v", "latest", "v1.0.0-rc.1"], source="the fork at X")
    assert "the fork at X has no semver release tag among its 3 tags" in str(info.value)
    assert "--prerelease" in str(info.value)


def test_releases_newest_first() -> None:
    order = [r.tag for r in versions.releases(["v0.9.0", "v1.25.16", "v1.9.2", "junk", "v1.25.2"])]
    assert order == ["v1.25.16", "v1.25.2", "v1.9.2", "v0.9.0"]

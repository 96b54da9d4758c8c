"""The tag plan: tags per variant, rolling tags that never move backwards, destinations."""

from __future__ import annotations

import pytest

from pipeline.errors import ConfigError
from pipeline.policy import tagplan
from pipeline.policy.tagplan import decide_rolling, plan, plan_variant, resolve_destination

PREFIX = "127.0.0.1:5000/team"


def test_release_tags_per_variant() -> None:
    p = plan("v1.25.16", PREFIX)
    assert list(p) == ["executor", "debug", "slim", "warmer"]
    assert p["executor"].repository == f"{PREFIX}/kaniko-executor"
    assert p["executor"].version_tags == ("v1.25.16",)
    assert p["executor"].rolling_tags == ("v1.25", "v1", "latest")
    assert p["debug"].repository == f"{PREFIX}/kaniko-executor"
    assert p["debug"].tags == ("v1.25.16-debug", "v1.25-debug", "v1-debug", "debug")
    assert p["slim"].tags == ("v1.25.16-slim", "v1.25-slim", "v1-slim", "slim")
    assert p["warmer"].repository == f"{PREFIX}/kaniko-warmer"
    assert p["warmer"].tags == ("v1.25.16", "v1.25", "v1", "latest")


def test_no_two_variants_in_one_repository_share_a_tag() -> None:
    p = plan("1.25.16", "docker.io/me")
    seen: dict[tuple[str, str], str] = {}
    for variant, tp in p.items():
        for tag in tp.tags:
            assert (tp.repository, tag) not in seen, (variant, tag, seen)
            seen[(tp.repository, tag)] = variant
            tagplan.check_tag(tag)


@pytest.mark.parametrize("version", ["v1.26.0-rc.1", "1.26.0-alpha", "v2.0.0-beta.2"])
def test_prerelease_gets_only_its_exact_tag(version: str) -> None:
    p = plan(version, PREFIX)
    exact = "v" + version.lstrip("v")
    assert p["executor"].tags == (exact,)
    assert p["debug"].tags == (exact + "-debug",)
    assert p["slim"].tags == (exact + "-slim",)
    assert p["warmer"].tags == (exact,)
    assert all(not tp.rolling_tags for tp in p.values())


def test_build_metadata_is_written_with_an_underscore() -> None:
    tp = plan_variant("1.25.16+fork.2", "executor", PREFIX)
    assert tp.version_tags == ("v1.25.16_fork.2",)
    tagplan.check_tag(tp.version_tags[0])


@pytest.mark.parametrize("bad", ["", "latest", "1.25", "v1", "vx.y.z", "1.25.16.1", "01.2.3"])
def test_bad_versions_are_refused_clearly(bad: str) -> None:
    with pytest.raises(ConfigError, match="not a semantic version"):
        plan(bad, PREFIX)


def test_unknown_variant_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown image variant 'fat'"):
        plan("1.0.0", PREFIX, ["fat"])


def _publish_history(
    history: list[str], variant: str = "executor"
) -> tuple[dict[str, str], list[tuple[str, tuple[str, ...]]]]:
    """Publish each version in turn; return what each tag holds at the end and every decision."""
    held: dict[str, str] = {}
    moves = []
    for version in history:
        tp = plan_variant(version, variant, PREFIX)
        for tag in tp.version_tags:
            held[tag] = tp.version
        decision = decide_rolling(tp, held)
        for tag in decision.move:
            held[tag] = tp.version
        moves.append((version, decision.move))
    return held, moves


def test_in_order_releases_move_every_rolling_tag() -> None:
    held, moves = _publish_history(["1.24.0", "1.24.1", "1.25.0", "1.25.16"])
    assert held["latest"] == held["v1"] == held["v1.25"] == "1.25.16"
    assert held["v1.24"] == "1.24.1"
    assert all(len(m) == 3 for _, m in moves)


def test_patch_of_an_older_minor_moves_only_its_minor_tag() -> None:
    held, moves = _publish_history(["1.25.9", "2.0.0", "1.25.16"])
    assert moves[-1] == ("1.25.16", ("v1.25", "v1"))
    assert held["v1.25"] == "1.25.16"
    assert held["v1"] == "1.25.16"
    assert held["v2"] == held["latest"] == "2.0.0"


def test_v1_holding_2_0_0_does_not_move() -> None:
    tp = plan_variant("1.25.16", "executor", PREFIX)
    decision = decide_rolling(tp, {"v1.25": "1.25.9", "v1": "2.0.0", "latest": "2.0.0"})
    assert decision.move == ("v1.25",)
    assert dict(decision.keep) == {"v1": "2.0.0", "latest": "2.0.0"}


def test_older_release_published_late_moves_nothing_that_is_newer() -> None:
    held, moves = _publish_history(["1.25.16", "1.26.3", "1.26.1", "1.25.10"])
    assert held["v1.26"] == "1.26.3"
    assert held["v1.25"] == "1.25.16"
    assert held["v1"] == held["latest"] == "1.26.3"
    assert moves[2] == ("1.26.1", ())
    assert moves[3] == ("1.25.10", ())
    # the exact tags were still written
    assert held["v1.26.1"] == "1.26.1" and held["v1.25.10"] == "1.25.10"


def test_republishing_the_same_version_moves_its_rolling_tags_again() -> None:
    held, moves = _publish_history(["1.25.16", "1.25.16"])
    assert moves[1] == ("1.25.16", ("v1.25", "v1", "latest"))


def test_prerelease_never_touches_rolling_tags_even_when_newest() -> None:
    held, moves = _publish_history(["1.25.16", "1.26.0-rc.1", "1.26.0"])
    assert moves[1] == ("1.26.0-rc.1", ())
    assert held["latest"] == "1.26.0"
    assert held["v1.26.0-rc.1"] == "1.26.0-rc.1"


def test_release_after_its_prerelease_is_higher() -> None:
    tp = plan_variant("1.26.0", "executor", PREFIX)
    # Someone moved latest to an rc by hand: the release is higher and moves it.
    assert decide_rolling(tp, {"latest": "v1.26.0-rc.2"}).move == ("v1.26", "v1", "latest")


def test_debug_and_warmer_histories_are_independent() -> None:
    held_debug, _ = _publish_history(["1.25.16", "1.26.0", "1.25.17"], "debug")
    assert held_debug["debug"] == "1.26.0"
    assert held_debug["v1.25-debug"] == "1.25.17"
    held_warmer, _ = _publish_history(["1.25.17"], "warmer")
    assert held_warmer["latest"] == "1.25.17"


@pytest.mark.parametrize("unknown", [None, "", "not-a-version", "sha-abcdef"])
def test_rolling_tag_without_a_readable_version_moves(unknown: str | None) -> None:
    tp = plan_variant("1.25.16", "executor", PREFIX)
    assert decide_rolling(tp, {"latest": unknown}).move == ("v1.25", "v1", "latest")


def test_many_random_histories_never_move_backwards() -> None:
    import random

    rng = random.Random(1234)
    versions = [f"{a}.{b}.{c}" for a in (1, 2) for b in range(4) for c in range(4)]
    for _ in range(200):
        history = rng.sample(versions, rng.randint(1, 12))
        held, _ = _publish_history(history)
        # each rolling tag holds the highest version of its range among those published
        for tag, version in held.items():
            if tag == "latest":
                want = max(history, key=tagplan.parse_version)
            elif tag.count(".") == 1:
                major, minor = tag[1:].split(".")
                want = max(
                    (h for h in history if h.startswith(f"{major}.{minor}.")), key=tagplan.parse_version
                )
            elif tag.count(".") == 0:
                want = max((h for h in history if h.startswith(f"{tag[1:]}.")), key=tagplan.parse_version)
            else:
                want = tag[1:]
            assert version == want, (history, tag)


# -- destinations ------------------------------------------------------------------------------


def test_explicit_prefix_wins() -> None:
    env = {"DOCKER_HUB_USERNAME": "someone"}
    dest = resolve_destination("127.0.0.1:5000/team/", env, has_docker_hub_credentials=True)
    assert dest.prefix == "127.0.0.1:5000/team" and not dest.embedded


def test_docker_hub_default_from_username() -> None:
    dest = resolve_destination(None, {"DOCKER_HUB_USERNAME": "Me"}, has_docker_hub_credentials=True)
    assert dest.prefix == "docker.io/me"
    assert plan("1.25.16", dest.prefix or "")["warmer"].repository == "docker.io/me/kaniko-warmer"


def test_no_prefix_no_credentials_means_embedded() -> None:
    dest = resolve_destination("", {}, has_docker_hub_credentials=False)
    assert dest.embedded and dest.prefix is None


def test_username_without_credentials_is_an_error() -> None:
    with pytest.raises(ConfigError, match="DOCKER_HUB_KANIKO_PAT"):
        resolve_destination(None, {"DOCKER_HUB_USERNAME": "me"}, has_docker_hub_credentials=False)


def test_credentials_without_username_is_an_error() -> None:
    with pytest.raises(ConfigError, match="DOCKER_HUB_USERNAME"):
        resolve_destination(None, {}, has_docker_hub_credentials=True)


@pytest.mark.parametrize(
    "good",
    ["docker.io/me", "localhost:5000/a/b", "ghcr.io/org/sub-team", "me", "[::1]:5000/x", "127.0.0.1:5000"],
)
def test_good_prefixes(good: str) -> None:
    assert tagplan.normalize_prefix(good) == good


@pytest.mark.parametrize(
    "bad", ["", "/", "docker.io//me", "docker.io/Me", "reg.io/a b", "reg.io/-x", "Me", "a:b:c/x"]
)
def test_bad_prefixes_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        tagplan.normalize_prefix(bad)

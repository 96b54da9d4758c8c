"""The tag plan: which repository each image variant goes to, and which tags it gets (pure logic).

For a release ``vX.Y.Z``:

- executor: ``vX.Y.Z``, then the rolling ``vX.Y``, ``vX``, ``latest``;
- debug / slim: ``vX.Y.Z-debug``, then ``vX.Y-debug``, ``vX-debug``, ``debug`` (slim likewise);
- warmer: ``vX.Y.Z``, then ``vX.Y``, ``vX``, ``latest``, in its own repository.

executor, debug and slim go to ``PREFIX/kaniko-executor``, warmer to ``PREFIX/kaniko-warmer``.
Version tags are pushed first; rolling tags move later (a release moves them only after its checks
pass), and never backwards: a rolling tag whose image already holds a higher version (its
``org.opencontainers.image.version`` annotation, read by the caller) stays where it is. A pre-release
gets only its exact tag.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import semver

from pipeline.config import VARIANTS
from pipeline.errors import ConfigError
from pipeline.registry.reference import TAG_RULE, is_component, is_host, is_tag

VERSION_ANNOTATION = "org.opencontainers.image.version"
EXECUTOR_REPOSITORY = "kaniko-executor"
WARMER_REPOSITORY = "kaniko-warmer"
DOCKER_HUB = "docker.io"

# Suffix of each variant's tags ("" for the plain ones), and the bare rolling tag it gets.
_SUFFIX = {"executor": "", "debug": "-debug", "slim": "-slim", "warmer": ""}
_BARE = {"executor": "latest", "debug": "debug", "slim": "slim", "warmer": "latest"}


def parse_version(text: str) -> semver.Version:
    """``v1.25.16`` or ``1.25.16`` as a semver Version; a clear error for anything else."""
    raw = str(text).strip()
    try:
        return semver.Version.parse(raw[1:] if raw[:1] in ("v", "V") else raw)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"version {text!r} is not a semantic version like v1.25.16",
            hint="the version comes from the fork's release tag (vMAJOR.MINOR.PATCH[-PRERELEASE])",
        ) from exc


def _exact(version: semver.Version) -> str:
    # '+' (build metadata) is not allowed in a tag; '_' is, as Helm and others write it.
    return "v" + str(version).replace("+", "_")


def repository_name(variant: str) -> str:
    if variant not in _SUFFIX:
        raise ConfigError(f"unknown image variant {variant!r}", hint="choose from " + ", ".join(VARIANTS))
    return WARMER_REPOSITORY if variant == "warmer" else EXECUTOR_REPOSITORY


@dataclass(frozen=True)
class TagPlan:
    """The tags of one variant: its exact version tags, and the rolling tags it may move."""

    variant: str
    repository: str  # "PREFIX/kaniko-executor"
    version: str  # "1.25.16"
    version_tags: tuple[str, ...]
    rolling_tags: tuple[str, ...]

    @property
    def tags(self) -> tuple[str, ...]:
        return self.version_tags + self.rolling_tags


def plan_variant(version: str | semver.Version, variant: str, prefix: str) -> TagPlan:
    v = version if isinstance(version, semver.Version) else parse_version(version)
    suffix = _SUFFIX.get(variant)
    if suffix is None:
        raise ConfigError(f"unknown image variant {variant!r}", hint="choose from " + ", ".join(VARIANTS))
    repository = f"{normalize_prefix(prefix)}/{repository_name(variant)}"
    exact = _exact(v) + suffix
    if v.prerelease:
        return TagPlan(variant, repository, str(v), (exact,), ())
    rolling = (f"v{v.major}.{v.minor}{suffix}", f"v{v.major}{suffix}", _BARE[variant])
    return TagPlan(variant, repository, str(v), (exact,), rolling)


def plan(version: str, prefix: str, variants: Iterable[str] = VARIANTS) -> dict[str, TagPlan]:
    """The tag plan of every variant, in the order given."""
    v = parse_version(version)
    return {variant: plan_variant(v, variant, prefix) for variant in variants}


@dataclass(frozen=True)
class RollingDecision:
    """Which rolling tags move to the new image, and which stay because they hold a higher version."""

    move: tuple[str, ...]
    keep: Mapping[str, str]  # tag -> the (higher) version it holds


def decide_rolling(tag_plan: TagPlan, current: Mapping[str, str | None]) -> RollingDecision:
    """Rolling tags never move backwards.

    ``current`` maps a rolling tag to the version its image holds now (the
    ``org.opencontainers.image.version`` annotation); a tag that is absent, or whose image carries no
    readable version, moves. A tag holding a higher version than this plan's stays; the same version
    moves (a rebuild of the same release replaces it).
    """
    new = parse_version(tag_plan.version)
    move: list[str] = []
    keep: dict[str, str] = {}
    for tag in tag_plan.rolling_tags:
        held = current.get(tag)
        held_version = _try_version(held)
        if held_version is not None and held_version > new:
            keep[tag] = str(held_version)
        else:
            move.append(tag)
    return RollingDecision(tuple(move), keep)


def _try_version(text: str | None) -> semver.Version | None:
    if not text:
        return None
    try:
        return parse_version(text)
    except ConfigError:
        return None


# -- destinations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Destination:
    """Where the images go: ``PREFIX/kaniko-executor`` and ``PREFIX/kaniko-warmer``."""

    prefix: str | None  # None: the embedded local registry (its host is known once it runs)
    reason: str

    @property
    def embedded(self) -> bool:
        return self.prefix is None


def normalize_prefix(prefix: str) -> str:
    """Check a repository prefix (``docker.io/user``, ``127.0.0.1:5000/team``, ``ghcr.io/a/b``)."""
    text = str(prefix).strip().rstrip("/")
    if "://" in text:
        text = text.split("://", 1)[1]
    if not text.isascii():
        raise ConfigError(
            f"repository prefix {prefix!r} contains non-ASCII characters",
            hint="pass --prefix REGISTRY/NAMESPACE, e.g. docker.io/myuser or 127.0.0.1:5000/team",
        )
    parts = text.split("/")
    if not text or any(not p for p in parts):
        raise ConfigError(
            f"repository prefix {prefix!r} is empty or has an empty path component",
            hint="pass --prefix REGISTRY/NAMESPACE, e.g. docker.io/myuser or 127.0.0.1:5000/team",
        )
    first, rest = parts[0], parts[1:]
    # A first part with a dot or a port (or localhost) is a registry host; alone, it is the whole prefix
    # (``127.0.0.1:5000`` puts the images at ``127.0.0.1:5000/kaniko-executor``).
    # (The same test and grammar as pipeline.registry.reference, the project's one reference grammar.)
    names_host = "." in first or ":" in first or first == "localhost"
    if names_host and not is_host(first):
        raise ConfigError(f"registry host {first!r} in prefix {prefix!r} is not a valid host[:port]")
    for component in rest if names_host else parts:
        if not is_component(component):
            raise ConfigError(
                f"repository prefix {prefix!r}: {component!r} is not a valid repository name component",
                hint="use lowercase letters, digits and separators (., _, __, -), e.g. docker.io/myuser",
            )
    return text


EMBEDDED_REASON = "no prefix and no credentials are configured"


def resolve_destination(
    prefix: str | None, env: Mapping[str, str], *, has_docker_hub_credentials: bool
) -> Destination:
    """The destination of a publish.

    - an explicit prefix (``--prefix`` or config) wins;
    - else ``docker.io/$DOCKER_HUB_USERNAME`` when Docker Hub credentials are configured;
    - else, with no prefix and no credentials, the embedded local registry.
    """
    if prefix and prefix.strip():
        return Destination(normalize_prefix(prefix), "the configured prefix")
    username = (env.get("DOCKER_HUB_USERNAME") or "").strip()
    if username and has_docker_hub_credentials:
        return Destination(
            normalize_prefix(f"{DOCKER_HUB}/{username.lower()}"), "DOCKER_HUB_USERNAME with credentials"
        )
    if username:
        raise ConfigError(
            f"DOCKER_HUB_USERNAME is set ({username}) but no Docker Hub credentials are configured",
            hint="set DOCKER_HUB_KANIKO_PAT (or log in with a Docker config), or pass --prefix",
        )
    if has_docker_hub_credentials:
        raise ConfigError(
            "Docker Hub credentials are configured but not the namespace to publish under",
            hint="set DOCKER_HUB_USERNAME, or pass --prefix docker.io/NAMESPACE",
        )
    return Destination(None, EMBEDDED_REASON)


def check_tag(tag: str) -> str:
    if not is_tag(tag):
        raise ConfigError(f"{tag!r} is not a valid tag", hint=TAG_RULE)
    return tag

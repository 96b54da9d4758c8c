"""Release selection: which tags are releases, and which is the newest.

A release tag is a semantic version with an optional leading ``v`` (``v1.25.16``, ``1.25.16``).
Tags that are not semver (``v``, ``latest``, ``v1.2``, ``nightly-2024``) are ignored, never an error.
Pre-releases (``v1.26.0-rc.1``) count only when asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import semver

from pipeline.errors import ReleaseSelectionError


@dataclass(frozen=True, order=False)
class Release:
    tag: str
    version: semver.Version


def parse_tag(tag: str) -> semver.Version | None:
    """The version a tag names, or None when the tag is not a release tag."""
    text = tag[1:] if tag[:1] in ("v", "V") else tag
    if not text or not text[0].isdigit():
        return None
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError):
        return None


def check_ref(ref: str) -> None:
    """Refuse a ``--ref`` that can name no release (before the fork is reached): ``latest``, or a
    release tag (``v1.25.16``, ``1.25.16``, ``v1.26.0-rc.1``)."""
    text = (ref or "").strip()
    if text and text != "latest" and parse_tag(text) is None:
        raise ReleaseSelectionError(
            f"--ref {ref!r} names no release",
            hint="name a release tag such as v1.25.16, or use --ref latest",
        )


def releases(tags: Iterable[str], *, prerelease: bool = False) -> list[Release]:
    """The release tags among ``tags``, newest first.

    Semver precedence orders them (build metadata does not count); ties (``v1.2.3`` beside
    ``1.2.3``, or a build-metadata spelling) prefer the ``v`` spelling, then no build metadata,
    then the name, so the choice is deterministic.
    """
    found: list[Release] = []
    for tag in tags:
        version = parse_tag(tag)
        if version is None or (version.prerelease is not None and not prerelease):
            continue
        found.append(Release(tag, version))

    # Stable sorts, least significant key first: name, then no build metadata, then the "v"
    # spelling, then semver precedence (which ignores build metadata).
    found.sort(key=lambda rel: rel.tag)
    found.sort(key=lambda rel: rel.version.build is None, reverse=True)
    found.sort(key=lambda rel: rel.tag.startswith("v"), reverse=True)
    found.sort(key=lambda rel: rel.version, reverse=True)
    return found


def newest(tags: Iterable[str], *, prerelease: bool = False, source: str = "the fork") -> Release:
    """The highest release among ``tags``."""
    tag_list = list(tags)
    found = releases(tag_list, prerelease=prerelease)
    if not found:
        kinds = "release or pre-release" if prerelease else "release"
        more = "" if prerelease else " (pre-releases count only with --prerelease)"
        raise ReleaseSelectionError(
            f"{source} has no semver {kinds} tag among its {len(tag_list)} tags{more}",
            hint="check the URL, or name a tag with --ref",
        )
    return found[0]

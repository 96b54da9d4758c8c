"""The release to make: the fork's release tag and the commit it names, from ``git ls-remote``."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.errors import ForkError, ReleaseSelectionError
from pipeline.policy import versions
from pipeline.source import pinfile
from pipeline.urls import redact, redact_text

if TYPE_CHECKING:
    from pipeline.config import Settings


LS_REMOTE_TIMEOUT = 20.0


@dataclass(frozen=True)
class Resolved:
    """The release to make: the fork's URL, its tag, the commit the tag names, the version."""

    url: str
    tag: str
    commit: str
    version: str
    pinned: bool


def _offline_hint(url: str) -> str:
    return (
        f"check the network, or point the pipeline at a mirror of the fork: --fork-url PATH_OR_URL "
        f"(or the KANIKO_FORK_URL environment variable), e.g. --fork-url /srv/mirrors/kaniko.git "
        f"(a `git clone --mirror` of {pinfile.DEFAULT_URL.removesuffix('.git')})"
    )


def remote_tags(url: str, *, timeout: float = LS_REMOTE_TIMEOUT) -> dict[str, str]:
    """``git ls-remote --tags URL``: tag -> the commit it names (annotated tags peeled).

    Fails within ``timeout`` seconds when the fork cannot be reached, saying how to use a mirror.
    """
    from pipeline.source.git_clone import GIT_ENV, normalize_url
    from pipeline.urls import git_access

    with git_access(normalize_url(url), {**GIT_ENV}) as (target, access):
        return _ls_remote(target, access, timeout)


def _ls_remote(url: str, access: dict[str, str], timeout: float) -> dict[str, str]:
    """``git ls-remote --tags`` of ``url`` (no user info: ``access`` carries the credentials)."""
    from pipeline.source.git_clone import config_env, upload_pack

    target = url
    git = shutil.which("git")
    if git is None:
        raise ForkError("git is not installed", hint="run `invoke setup`")
    argv = [
        git,
        "-c",
        "http.lowSpeedLimit=1000",
        "-c",
        f"http.lowSpeedTime={max(1, int(timeout))}",
        "ls-remote",
        "--tags",
        *([f"--upload-pack={upload_pack(target)}"] if upload_pack(target) else []),
        target,
    ]
    env = {
        **os.environ,
        **access,
        **config_env(target),
        "GIT_SSH_COMMAND": f"ssh -o ConnectTimeout={max(1, int(timeout))}",
    }
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise ForkError(
            f"the fork at {url} did not answer within {timeout:.0f} s", hint=_offline_hint(url)
        ) from None
    if result.returncode != 0:
        lines = [line.strip() for line in redact_text(result.stderr).strip().splitlines() if line.strip()]
        raise ForkError(
            f"cannot reach the fork at {url}: {'; '.join(lines[-2:]) or f'git exited {result.returncode}'}",
            hint=_offline_hint(url),
        )
    tags: dict[str, str] = {}
    for line in result.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if not ref.startswith("refs/tags/"):
            continue
        name = ref[len("refs/tags/") :]
        if name.endswith("^{}"):
            tags[name[:-3]] = sha  # the peeled commit wins over the tag object
        else:
            tags.setdefault(name, sha)
    return tags


def requested(settings: Settings, ref: str) -> tuple[str, str]:
    """The fork URL and the release ref a run asks for, before anything is resolved (for the report)."""
    pin = pinfile.load(settings.pin_file)
    return settings.fork_url or pin.url, (ref or "").strip() or pin.tag


def resolve(settings: Settings, ref: str) -> Resolved:
    """The release ``ref`` names (a tag, or ``latest``; default the pin's tag), checked against the pin."""
    pin = pinfile.load(settings.pin_file)
    fork_url, wanted = requested(settings, ref)
    tags = remote_tags(fork_url)
    shown = redact(fork_url)  # messages name the URL without user info; git gets it via askpass
    if wanted == "latest":
        release = versions.newest(tags, prerelease=settings.prerelease, source=f"the fork at {shown}")
    else:
        candidates = [wanted, wanted[1:] if wanted[:1] in ("v", "V") else "v" + wanted]
        found = next((name for name in candidates if name in tags), None)
        version = versions.parse_tag(found) if found else None
        if found is None or version is None:
            newest = [r.tag for r in versions.releases(tags)[:5]]
            raise ReleaseSelectionError(
                f"the fork at {shown} has no release tag {wanted!r}",
                hint="its newest release tags: " + (", ".join(newest) or "none") + "; or use --ref latest",
            )
        release = versions.Release(found, version)
    commit = tags[release.tag]
    pinned = release.tag == pin.tag
    if pinned and commit != pin.commit:
        raise ForkError(
            f"tag {release.tag} of the fork at {shown} names commit {commit}, but the pin says "
            f"{pin.commit}: the tag was moved",
            hint="refusing to release a moved tag; if the new commit is trusted, update fork/pin.json",
        )
    return Resolved(fork_url, release.tag, commit, str(release.version), pinned)

"""The fork stage: clone (once) or fetch the kaniko fork, check out a release tag, apply patches.

A pinned tag must still resolve to the pinned commit; a moved tag is refused. The cached clone and
git's access to the fork are in :mod:`pipeline.source.git_clone`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import record, tooloutput
from pipeline.errors import ForkError, RecordError, ReleaseSelectionError
from pipeline.policy import versions
from pipeline.progress import Progress, Silent
from pipeline.source import pinfile
from pipeline.source.checkout import Checkout, read_module
from pipeline.urls import git_access

if TYPE_CHECKING:
    import git

    from pipeline.config import (
        Settings,  # GitPython: loaded by the checkout, not by a reader of the fork record
    )

__all__ = ["Checkout", "checkout", "last_checkout", "recorded", "save_record", "update_pin"]


def _resolve_ref(repo: git.Repo, ref: str, url: str, prerelease: bool) -> versions.Release:
    tags = [tag.name for tag in repo.tags]
    if ref == "latest":
        return versions.newest(tags, prerelease=prerelease, source=f"the fork at {url}")
    candidates = [ref]
    if ref[:1] in ("v", "V"):
        candidates.append(ref[1:])
    else:
        candidates.append("v" + ref)
    for name in candidates:
        if name in tags:
            version = versions.parse_tag(name)
            if version is None:
                raise ReleaseSelectionError(
                    f"tag {name!r} of the fork at {url} is not a semver release tag",
                    hint="name a release tag such as v1.25.16, or use --ref latest",
                )
            return versions.Release(name, version)
    newest = [rel.tag for rel in versions.releases(tags, prerelease=True)[:5]]
    raise ReleaseSelectionError(
        f"the fork at {url} has no tag {ref!r}",
        hint=(
            ("its newest release tags are: " + ", ".join(newest) if newest else "it has no release tags")
            + ". Use --ref latest for the newest release"
        ),
    )


def _reset(repo: git.Repo, commit: str) -> None:
    repo.git.checkout("--force", "--detach", "--quiet", commit)
    repo.git.reset("--hard", "--quiet", commit)
    repo.git.clean("-ffdxq")


def _apply_patches(repo: git.Repo, patches: list[Path], commit: str, tag: str) -> None:
    import git

    for patch in patches:
        try:
            repo.git.apply("--whitespace=nowarn", str(patch.resolve()))
        except git.GitCommandError as exc:
            _reset(repo, commit)
            raise ForkError(
                f"patch {patch.name} does not apply to {tag} ({commit[:12]}):\n{tooloutput.tail(exc.stderr)}",
                hint=f"refresh {patch} against {tag}, or remove it; the checkout was left unpatched",
            ) from exc


def checkout(
    *,
    ref: str,
    pin: pinfile.Pin,
    patches_dir: Path,
    cache_dir: Path,
    url: str | None = None,
    prerelease: bool = False,
    progress: Progress | None = None,
) -> Checkout:
    """Clone or fetch the fork, check out ``ref`` (a tag, or ``latest``), and apply the patches.

    ``url`` defaults to the pin's. When the resolved tag is the pinned tag, it must resolve to the
    pinned commit. User info in the URL (``https://user:token@...``) reaches git through GIT_ASKPASS
    only: git, the cached clone, the Checkout and every message see the URL without it.
    """
    from pipeline.source.git_clone import GIT_ENV, normalize_url

    progress = progress or Silent()
    ref = ref.strip() or pin.tag
    patches = sorted(patches_dir.glob("*.patch")) if patches_dir.is_dir() else []
    with git_access(normalize_url(url or pin.url), GIT_ENV) as (url, env):
        return _checkout(url, env, ref, pin, patches, patches_dir, cache_dir, prerelease, progress)


def _checkout(
    url: str,
    env: Mapping[str, str],
    ref: str,
    pin: pinfile.Pin,
    patches: list[Path],
    patches_dir: Path,
    cache_dir: Path,
    prerelease: bool,
    progress: Progress,
) -> Checkout:
    from pipeline.source.git_clone import cache_slug, locked, open_or_clone

    # The Repo is closed on the way out: GitPython keeps `git cat-file` processes per Repo otherwise.
    with (
        locked(cache_dir / "forks" / f"{cache_slug(url)}.lock"),
        open_or_clone(url, cache_dir, progress, env) as repo,
    ):
        release = _resolve_ref(repo, ref, url, prerelease)
        commit_obj = repo.tags[release.tag].commit
        commit = commit_obj.hexsha
        pinned = release.tag == pin.tag
        if pinned and commit != pin.commit:
            raise ForkError(
                f"tag {release.tag} of the fork at {url} now resolves to commit {commit}, "
                f"but the pin says {pin.commit}: the tag was moved",
                hint=(
                    "refusing to build from a moved tag. Find out why upstream moved it; if the new "
                    "commit is trusted, write it into fork/pin.json by hand"
                ),
            )
        progress.step(f"checking out {release.tag} ({commit[:12]})")
        _reset(repo, commit)
        if patches:
            progress.step(f"applying {len(patches)} patch(es) from {patches_dir}")
        _apply_patches(repo, patches, commit, release.tag)
        path = Path(repo.working_tree_dir or "")
        return Checkout(
            url=url,
            tag=release.tag,
            commit=commit,
            version=str(release.version),
            commit_time=int(commit_obj.committed_date),
            module=read_module(path),
            path=path,
            patches=tuple(patch.name for patch in patches),
            pinned=pinned,
        )


def update_pin(pin_path: Path, current: pinfile.Pin, result: Checkout) -> pinfile.Pin | None:
    """Rewrite the pin to ``result``'s tag and commit (keeping the pin's URL). None when unchanged."""
    new = pinfile.Pin(url=current.url, tag=result.tag, commit=result.commit)
    if new == current:
        return None
    pinfile.save(pin_path, new)
    return new


def save_record(record_file: Path, result: Checkout) -> None:
    """The fork record, for a task that runs alone later (`invoke build`, build-image, conformance)."""
    record.save(record_file, "fork", result.to_dict())


def recorded(record_file: Path, *, needed_by: str) -> Checkout:
    """The last checkout, which ``needed_by`` (a task) needs: a RecordError naming it when the fork
    record is missing or broken."""
    checkout = _checkout_of(record.stage(record_file, "fork", needed_by=needed_by))
    if checkout is None:
        raise RecordError(f"the fork record in {record_file} is incomplete", hint="run `invoke fork` again")
    return checkout


def last_checkout(record_file: Path) -> Checkout | None:
    """The last checkout, or None when no whole fork record is there."""
    return _checkout_of(record.read(record_file).get("fork"))


def _checkout_of(data: Any) -> Checkout | None:
    """The one parser of the fork record."""
    try:
        return Checkout.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def run(
    settings: Settings, *, ref: str = "", update_pin_file: bool = False, progress: Progress | None = None
) -> dict[str, Any]:
    """`invoke fork`: check out ``ref`` (default: the pin's tag), record it, and with ``update_pin_file``
    rewrite the pin to it. Returns the JSON result."""
    progress = progress or Silent()
    versions.check_ref(ref)
    current = pinfile.load(settings.pin_file)
    result = checkout(
        ref=ref or current.tag,
        pin=current,
        patches_dir=settings.patches_dir,
        cache_dir=settings.cache_dir,
        url=settings.fork_url,
        prerelease=settings.prerelease,
        progress=progress,
    )
    out = result.to_dict()
    if update_pin_file:
        new = update_pin(settings.pin_file, current, result)
        out["pin_updated"] = new is not None
        if new is not None:
            progress.step(
                f"pin updated: {current.tag} -> {new.tag} ({new.commit[:12]}) in {settings.pin_file}"
            )
    save_record(settings.record_file, result)
    return out

"""git access to the fork: URL checks, the cached clone (clone once, fetch after), safe.directory.

The clone lives in the cache, keyed by URL, and is reused: later runs fetch into it, they never
clone again. A clone appears whole or not at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import git

from pipeline import tooloutput
from pipeline.errors import ForkError, UsageError
from pipeline.progress import Progress
from pipeline.urls import redact, redact_text

GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}


def normalize_url(url: str) -> str:
    """A URL as git takes it: remote URLs unchanged, local paths made absolute and checked."""
    url = url.strip()
    if not url:
        raise UsageError("the fork URL is empty", hint="pass --url URL (or a local mirror's path)")
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https", "ssh", "git"):
        return url
    if parsed.scheme == "file":
        local = Path(parsed.path)
    elif re.match(r"^[\w.-]+@[\w.-]+:", url):  # scp-like: git@host:owner/repo.git
        return url
    elif parsed.scheme and len(parsed.scheme) > 1:
        raise UsageError(
            f"the fork URL {redact(url)!r} has a scheme git cannot use here ({parsed.scheme}:)",
            hint="use https://, ssh://, git://, file:// or a local path",
        )
    else:
        local = Path(url).expanduser()
    if not local.exists():
        raise UsageError(
            f"the fork URL {url!r} names a local path that does not exist",
            hint="pass the path of a clone or bare mirror of the fork, or its https:// URL",
        )
    return str(local.resolve()) if parsed.scheme != "file" else url


def _safe_paths(url: str) -> list[str]:
    parsed = urlparse(url)
    if parsed.scheme not in ("", "file") or re.match(r"^[\w.-]+@[\w.-]+:", url):
        return []
    local = Path(parsed.path if parsed.scheme == "file" else url).expanduser()
    return list(dict.fromkeys([str(local), str(local.resolve()), str(local.resolve() / ".git")]))


def config_env(url: str) -> dict[str, str]:
    """git's configuration for every git call on the fork (from the environment, over the user's).

    ``credential.helper`` is emptied: a token handed to git through GIT_ASKPASS is never given to
    the user's credential helper to store (``store`` writes it to ~/.git-credentials in clear text).
    For a fork on a local path, that path is a ``safe.directory``: git refuses to read a repository
    that another user owns ("detected dubious ownership"), which is what an ordinary user meets with
    a mirror that root made. Only the fork's own path is named (with :func:`upload_pack`).
    """
    settings = [("credential.helper", "")] + [("safe.directory", path) for path in _safe_paths(url)]
    env = {"GIT_CONFIG_COUNT": str(len(settings))}
    for index, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


def upload_pack(url: str) -> str | None:
    """The ``--upload-pack`` command for a local fork: git clears GIT_CONFIG_* for the upload-pack it runs
    on a local repository, so the safe.directory has to be on that command's own line."""
    paths = _safe_paths(url)
    if not paths:
        return None
    return " ".join(
        ["git", *(f"-c {shlex.quote('safe.directory=' + path)}" for path in paths), "upload-pack"]
    )


def _upload_pack_option(url: str) -> dict[str, Any]:
    """GitPython's keywords for :func:`upload_pack` (our own command, so allowed explicitly)."""
    command = upload_pack(url)
    return {"upload_pack": command, "allow_unsafe_options": True} if command else {}


def cache_slug(url: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", url.rstrip("/").rsplit("/", 1)[-1]).strip("-.") or "fork"
    name = name.removesuffix(".git") or "fork"
    return f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class _GitProgress(git.RemoteProgress):
    _NAMES = {
        git.RemoteProgress.COUNTING: "counting objects",
        git.RemoteProgress.COMPRESSING: "compressing objects",
        git.RemoteProgress.RECEIVING: "receiving objects",
        git.RemoteProgress.RESOLVING: "resolving deltas",
        git.RemoteProgress.WRITING: "writing objects",
    }

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress

    def update(
        self,
        op_code: int,
        cur_count: str | float,
        max_count: str | float | None = None,
        message: str = "",
    ) -> None:
        label = self._NAMES.get(op_code & self.OP_MASK)
        if label is None:
            return
        total = float(max_count) if max_count else None
        self.progress.update(label, float(cur_count), total)


def _git_failure(
    action: str, url: str, exc: git.GitCommandError, progress: git.RemoteProgress | None = None
) -> ForkError:
    # With a progress handler, GitPython hands git's stderr to the handler, not to the exception:
    # git's own words ("Permission denied", "does not exist") are in its error and other lines then.
    said = tooloutput.tail(exc.stderr)
    if not said and progress is not None:
        said = tooloutput.tail("\n".join([*progress.other_lines, *progress.error_lines]))
    said = redact_text(said)
    detail = f"git exit status {exc.status}:\n{said}" if said else f"git exited with status {exc.status}"
    return ForkError(
        f"could not {action} the fork from {url} ({detail})",
        hint=(
            "check the URL and your network. Offline, point the fork URL at a local clone or mirror of "
            "github.com/chainguard-forks/kaniko: --url for `invoke fork`, --fork-url for `invoke "
            "release` and `invoke reproduce`, or KANIKO_FORK_URL"
        ),
    )


def _fetch(repo: git.Repo, url: str, progress: Progress, env: Mapping[str, str] = GIT_ENV) -> None:
    """Fetch branches and every tag, forcing moved tags and pruning deleted ones."""
    origin = repo.remote("origin") if "origin" in [r.name for r in repo.remotes] else None
    if origin is None:
        origin = repo.create_remote("origin", url)
    elif origin.url != url:
        origin.set_url(url)
    with repo.git.custom_environment(**{**env, **config_env(url)}):
        handler = _GitProgress(progress)
        try:
            origin.fetch(
                refspec=["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"],
                progress=handler,
                prune=True,
                force=True,
                **_upload_pack_option(url),
            )
        except git.GitCommandError as exc:
            raise _git_failure("fetch", url, exc, handler) from exc
    progress.close()


def open_or_clone(
    url: str, cache_dir: Path, progress: Progress, env: Mapping[str, str] = GIT_ENV
) -> git.Repo:
    forks = cache_dir / "forks"
    path = forks / cache_slug(url)
    if path.exists():
        try:
            repo = git.Repo(path)
            progress.step(f"fetching {url} into the cached clone {path}")
            try:
                _fetch(repo, url, progress, env)
            except BaseException:
                repo.close()
                raise
            return repo
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            progress.warn(f"the cached clone {path} is not a git repository; cloning again")
            shutil.rmtree(path)
    forks.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=forks))
    try:
        progress.step(f"cloning {url} into {path}")
        # `git clone` (not init + fetch): from a local path it copies the object store directly,
        # which also works for a mirror that lacks objects no release needs.
        handler = _GitProgress(progress)
        try:
            repo = _clone(url, tmp, handler, env)
        except git.GitCommandError as exc:
            failure = _git_failure("clone", url, exc, handler)
            if not _safe_paths(url) or "Permission denied" not in failure.message:
                raise failure from exc
            # A mirror another user made may hold files only its owner can read (a partial clone's
            # .promisor is 0600): borrow its objects instead of copying them.
            progress.warn(f"cannot copy every file of {url}; borrowing its objects (git clone --shared)")
            shutil.rmtree(tmp)
            tmp.mkdir()
            try:
                repo = _clone(url, tmp, _GitProgress(progress), env, shared=True)
            except git.GitCommandError:
                raise failure from exc
        progress.close()
        with repo:  # closes its git processes before the directory moves
            _fetch(repo, url, progress, env)
        os.replace(tmp, path)  # a clone appears whole or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return git.Repo(path)


def _clone(
    url: str, dest: Path, handler: _GitProgress, env: Mapping[str, str], *, shared: bool = False
) -> git.Repo:
    options: dict[str, Any] = {"shared": True} if shared else {}
    return git.Repo.clone_from(
        url,
        dest,
        no_checkout=True,
        progress=handler,  # type: ignore[arg-type]
        env={**env, **config_env(url)},
        **_upload_pack_option(url),
        **options,
    )

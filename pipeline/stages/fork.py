"""The fork stage: clone (once) or fetch the kaniko fork, check out a release tag, apply patches.

The clone lives in the cache, keyed by URL, and is reused: later runs fetch into it, they never
clone again. A pinned tag must still resolve to the pinned commit; a moved tag is refused.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from pipeline import tooloutput
from pipeline.errors import ForkError, ReleaseSelectionError, UsageError
from pipeline.policy import versions
from pipeline.progress import Progress, Silent
from pipeline.source import pin as pinfile
from pipeline.urls import git_access, redact, redact_text

if TYPE_CHECKING:  # GitPython takes a while to import: what runs git imports it (Checkout does not)
    import git

GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
_MODULE_LINE = re.compile(r"^module\s+\"?([^\s\"]+)\"?\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Checkout:
    """A checked-out release of the fork, as the later stages need it."""

    url: str
    tag: str
    commit: str
    version: str
    commit_time: int
    module: str
    path: Path
    patches: tuple[str, ...] = ()
    pinned: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["patches"] = list(self.patches)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkout:
        return cls(
            url=data["url"],
            tag=data["tag"],
            commit=data["commit"],
            version=data["version"],
            commit_time=int(data["commit_time"]),
            module=data["module"],
            path=Path(data["path"]),
            patches=tuple(data.get("patches", ())),
            pinned=bool(data.get("pinned", False)),
        )


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


def safe_env(url: str) -> dict[str, str]:
    """For a fork on a local path: that path as a ``safe.directory`` (git's config from the environment).

    git refuses to read a repository that another user owns ("detected dubious ownership"), which is
    what an ordinary user meets with a mirror that root made. Only the fork's own path is named, and
    only for the clone, fetch and ls-remote that read it (with :func:`upload_pack`)."""
    env: dict[str, str] = {}
    paths = _safe_paths(url)
    if paths:
        env["GIT_CONFIG_COUNT"] = str(len(paths))
        for index, path in enumerate(paths):
            env[f"GIT_CONFIG_KEY_{index}"] = "safe.directory"
            env[f"GIT_CONFIG_VALUE_{index}"] = path
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


def _cache_slug(url: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", url.rstrip("/").rsplit("/", 1)[-1]).strip("-.") or "fork"
    name = name.removesuffix(".git") or "fork"
    return f"{name}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _git_progress(progress: Progress) -> git.RemoteProgress:
    """A GitPython progress handler that reports git's counts to ``progress``."""
    import git

    names = {
        git.RemoteProgress.COUNTING: "counting objects",
        git.RemoteProgress.COMPRESSING: "compressing objects",
        git.RemoteProgress.RECEIVING: "receiving objects",
        git.RemoteProgress.RESOLVING: "resolving deltas",
        git.RemoteProgress.WRITING: "writing objects",
    }

    class GitProgress(git.RemoteProgress):
        def update(
            self,
            op_code: int,
            cur_count: str | float,
            max_count: str | float | None = None,
            message: str = "",
        ) -> None:
            label = names.get(op_code & self.OP_MASK)
            if label is None:
                return
            total = float(max_count) if max_count else None
            progress.update(label, float(cur_count), total)

    return GitProgress()


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
            "check the URL and your network. Offline, point --url (or KANIKO_FORK_URL) at a local "
            "clone or mirror of github.com/chainguard-forks/kaniko"
        ),
    )


def _fetch(repo: git.Repo, url: str, progress: Progress, env: Mapping[str, str] = GIT_ENV) -> None:
    """Fetch branches and every tag, forcing moved tags and pruning deleted ones."""
    import git

    origin = repo.remote("origin") if "origin" in [r.name for r in repo.remotes] else None
    if origin is None:
        origin = repo.create_remote("origin", url)
    elif origin.url != url:
        origin.set_url(url)
    with repo.git.custom_environment(**{**env, **safe_env(url)}):
        handler = _git_progress(progress)
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


def _open_or_clone(
    url: str, cache_dir: Path, progress: Progress, env: Mapping[str, str] = GIT_ENV
) -> git.Repo:
    import git

    forks = cache_dir / "forks"
    path = forks / _cache_slug(url)
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
        handler = _git_progress(progress)
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
                repo = _clone(url, tmp, _git_progress(progress), env, shared=True)
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
    url: str, dest: Path, handler: git.RemoteProgress, env: Mapping[str, str], *, shared: bool = False
) -> git.Repo:
    import git

    options: dict[str, Any] = {"shared": True} if shared else {}
    return git.Repo.clone_from(
        url,
        dest,
        no_checkout=True,
        progress=handler,  # type: ignore[arg-type]
        env={**env, **safe_env(url)},
        **_upload_pack_option(url),
        **options,
    )


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


def read_module(path: Path) -> str:
    go_mod = path / "go.mod"
    try:
        text = go_mod.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ForkError(
            f"the checkout at {path} has no go.mod: it is not the kaniko fork (or not a Go module)",
            hint="check --url",
        ) from exc
    match = _MODULE_LINE.search(text)
    if not match:
        raise ForkError(f"{go_mod} has no module line", hint="check --url")
    return match.group(1)


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
    # The Repo is closed on the way out: GitPython keeps `git cat-file` processes per Repo otherwise.
    with (
        _locked(cache_dir / "forks" / f"{_cache_slug(url)}.lock"),
        _open_or_clone(url, cache_dir, progress, env) as repo,
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

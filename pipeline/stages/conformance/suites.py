"""Conformance suites as pinned inputs: what ``--suite`` names, and fetching a suite's files at its commit.

- ``repository``: this repository's ``conformance/cases`` (the gating suite);
- ``fork``: the fork's ``integration/dockerfiles`` at the commit of ``fork/pin.json``, fetched from the fork's
  URL (``--fork-url``/``KANIKO_FORK_URL``, a local mirror offline);
- ``buildah``: buildah's ``tests/conformance/testdata`` at the commit ``conformance/suites.json`` pins,
  fetched from its URL or from the mirror the pin's ``mirror_env`` variable names;
- ``URL@COMMIT:PATH``: any other suite; PATH is a folder of case folders or a folder of Dockerfiles
  (see :mod:`pipeline.stages.conformance.layouts`).

A suite is fetched like the fork: one cached clone per URL (pipeline/source/git_clone.py), fetched only when the
pinned commit is not in it yet; the files of PATH's parent folder at that commit (the suite's runner lives
there: buildah's ``conformance_test.go``, the fork's ``images.go``) are extracted once into the cache,
whole or not at all, and read from there.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.config import PROJECT_ROOT
from pipeline.errors import ForkError, UsageError
from pipeline.progress import Progress, Silent

PINS = PROJECT_ROOT / "conformance" / "suites.json"
REPOSITORY, FORK = "repository", "fork"
FORK_PATH = "integration/dockerfiles"
FORMAT = 2  # bump when what an extraction holds changes, so cached ones are made again
_SHA = re.compile(r"[0-9a-f]{40}")
_FORM = "NAME (repository, fork, buildah) or URL@COMMIT:PATH (COMMIT a full 40-character SHA-1)"


@dataclass(frozen=True)
class SuiteSource:
    """Where a suite comes from: ``url`` at ``commit``, the folder ``path`` in it (url "": this repository)."""

    name: str
    url: str
    commit: str
    path: str
    gating: bool = False  # only the repository suite gates on its own; the others gate on regressions
    mirror_env: str = ""  # the environment variable that points it at a mirror (offline)

    def describe(self) -> str:
        return f"{self.name} ({self.url}@{self.commit[:12]}:{self.path})" if self.url else self.name


def pins(path: Path = PINS) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the suite pins {path}: {exc}", hint="restore it from git") from None
    if not isinstance(data, dict) or not all(
        isinstance(v, dict) and {"url", "commit", "path"} <= set(v) for v in data.values()
    ):
        raise UsageError(
            f"{path} must map each suite name to its url, commit and path", hint="restore it from git"
        )
    return data


def named(
    name: str,
    *,
    fork_url: str | None,
    fork_commit: str,
    env: Mapping[str, str] | None = None,
    pin_file: Path = PINS,
) -> SuiteSource:
    """A suite by name; the URL of a pinned suite is its mirror variable's value when that is set."""
    env = os.environ if env is None else env
    if name == REPOSITORY:
        return SuiteSource(REPOSITORY, "", "", "conformance/cases", gating=True)
    if name == FORK:
        from pipeline.source.pinfile import DEFAULT_URL

        return SuiteSource(
            FORK, fork_url or DEFAULT_URL, fork_commit, FORK_PATH, mirror_env="KANIKO_FORK_URL"
        )
    known = pins(pin_file)
    if name in known:
        pin = known[name]
        url = (env.get(pin.get("mirror_env", "")) or "").strip() or pin["url"]
        return SuiteSource(name, url, pin["commit"], pin["path"], mirror_env=pin.get("mirror_env", ""))
    return parse(name)


def parse(value: str) -> SuiteSource:
    """``URL@COMMIT:PATH``: any suite, pinned by its commit."""
    match = re.fullmatch(r"(?P<url>.+)@(?P<commit>[0-9A-Fa-f]+):(?P<path>.+)", value.strip())
    if match is None:
        raise UsageError(f"--suite {value!r} is neither a known suite nor URL@COMMIT:PATH", hint=_FORM)
    commit = match["commit"].lower()
    if not _SHA.fullmatch(commit):
        raise UsageError(
            f"--suite {value!r}: {match['commit']} is not a full commit SHA-1",
            hint="pin the suite by its full 40-character commit, so every run reads the same files",
        )
    path = PurePosixPath(match["path"].strip("/"))
    if not str(path) or path.is_absolute() or ".." in path.parts:
        raise UsageError(f"--suite {value!r}: the PATH {match['path']!r} is not a folder in the repository")
    url = match["url"]
    slug = re.sub(r"[^a-z0-9]+", "-", url.rstrip("/").removesuffix(".git").rsplit("/", 1)[-1].lower())
    name = f"{slug.strip('-') or 'suite'}-{path.name.lower()}"
    return SuiteSource(re.sub(r"[^a-z0-9._-]+", "-", name), url, commit, str(path))


def fetch(source: SuiteSource, cache_dir: Path, progress: Progress | None = None) -> Path:
    """The suite's folder on disk (``source.path`` at ``source.commit``), fetched and extracted once."""
    if not source.url:
        return PROJECT_ROOT / source.path
    from pipeline.source import git_clone

    progress = progress or Silent()
    url = source.url.strip()
    if "://" not in url and not re.match(r"^[\w.-]+@[\w.-]+:", url):  # a local path: as git will see it
        url = str(Path(url).expanduser().resolve())
    parent = str(PurePosixPath(source.path).parent)
    key = hashlib.sha256(f"{url}\0{parent}".encode()).hexdigest()[:10]
    root = Path(cache_dir) / "conformance" / "suites" / f"{source.name}-{source.commit[:12]}-{key}-v{FORMAT}"
    if not root.is_dir():
        clone = Path(cache_dir) / "forks" / git_clone.cache_slug(url)
        with git_clone.locked(Path(cache_dir) / "forks" / f".{clone.name}.lock"):
            if not _has_commit(clone, source.commit):
                progress.step(f"conformance: fetching the {source.name} suite from {url}")
                try:
                    git_clone.normalize_url(url)
                    git_clone.open_or_clone(url, Path(cache_dir), progress).close()
                except UsageError as exc:
                    raise UsageError(
                        exc.message.replace("the fork URL", f"the {source.name} suite's URL"),
                        hint=f"point {source.mirror_env or 'the suite'} at a local clone or mirror of it",
                    ) from None
                except ForkError as exc:
                    where = (
                        f"the {source.mirror_env} environment variable" if source.mirror_env else "the URL"
                    )
                    raise ForkError(
                        exc.message.replace("the fork", f"the {source.name} suite"),
                        hint=f"offline, point {where} at a local clone or mirror of {source.url}",
                    ) from None
            if not _has_commit(clone, source.commit):
                raise ForkError(
                    f"the {source.name} suite's pinned commit {source.commit} is not in {url}",
                    hint="pin a commit the repository has, or point the suite at a mirror that has it",
                )
            _extract(clone, source.commit, parent, root)
    folder = root / source.path
    if not folder.is_dir():
        raise UsageError(
            f"the {source.name} suite has no folder {source.path} at {source.commit[:12]}",
            hint="name a folder of case folders or of Dockerfiles (URL@COMMIT:PATH)",
        )
    return folder


def _has_commit(clone: Path, commit: str) -> bool:
    if not (clone / "HEAD").is_file() and not (clone / ".git").exists():
        return False
    found = subprocess.run(
        ["git", "-C", str(clone), "cat-file", "-e", f"{commit}^{{commit}}"],
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


def _extract(clone: Path, commit: str, parent: str, root: Path) -> None:
    """``git archive`` of ``parent`` at ``commit`` into ``root``: whole, or not at all."""
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        archive = subprocess.Popen(
            # tar.umask 0022: the modes of a checkout (git's own default, 0002, would make 0775 folders)
            [
                "git",
                "-C",
                str(clone),
                "-c",
                "tar.umask=0022",
                "archive",
                "--format=tar",
                commit,
                "--",
                parent,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert archive.stdout is not None
        untar = subprocess.run(
            ["tar", "-x", "--no-same-owner", "-C", str(staging)],
            stdin=archive.stdout,
            capture_output=True,
            check=False,
        )
        archive.stdout.close()
        said = archive.stderr.read().decode(errors="replace") if archive.stderr else ""
        if archive.wait() != 0 or untar.returncode != 0:
            raise ForkError(
                f"could not extract {parent} at {commit[:12]}: {said.strip() or untar.stderr.decode().strip()}",
                hint="check that the folder exists at that commit",
            )
        os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

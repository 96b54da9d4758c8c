"""Real git repositories with awkward tag sets, standing in for the kaniko fork's remote."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import git

MODULE = "github.com/chainguard-dev/kaniko"


OPEN: list[git.Repo] = []  # every UpstreamRepo's Repo, until close_all()


def close_all() -> None:
    while OPEN:
        OPEN.pop().close()


@dataclass
class UpstreamRepo:
    """A non-bare repository that plays the fork's remote; tests add commits and (re)tag them."""

    path: Path
    repo: git.Repo
    commits: dict[str, str] = field(default_factory=dict)
    _clock: int = 1_700_000_000

    @classmethod
    def create(cls, path: Path, module: str = MODULE) -> UpstreamRepo:
        repo = git.Repo.init(path, initial_branch="main")
        OPEN.append(repo)  # closed after each test (tests/conftest.py): its `git cat-file` processes too
        with repo.config_writer() as cfg:
            cfg.set_value("user", "name", "Upstream")
            cfg.set_value("user", "email", "upstream@example.invalid")
            cfg.set_value("commit", "gpgsign", "false")
            cfg.set_value("tag", "gpgsign", "false")
        upstream = cls(path=path, repo=repo)
        upstream.write("go.mod", f"module {module}\n\ngo 1.25.7\n")
        upstream.write("README.md", "kaniko\n")
        upstream.commit("initial")
        return upstream

    def write(self, name: str, text: str) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def commit(self, message: str) -> str:
        self._clock += 3600
        stamp = f"{self._clock} +0000"
        self.repo.git.add("--all")
        env = {"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        with self.repo.git.custom_environment(**env):
            self.repo.git.commit("--allow-empty", "-q", "-m", message)
        sha = self.repo.head.commit.hexsha
        self.commits[message] = sha
        return sha

    def tag(
        self, name: str, commit: str | None = None, *, annotated: bool = False, force: bool = False
    ) -> None:
        args = ["-f"] if force else []
        if annotated:
            args += ["-a", "-m", f"release {name}"]
        self.repo.git.tag(*args, name, commit or self.repo.head.commit.hexsha)

    def release(self, *tags: str, annotated: bool = False) -> str:
        """Commit a change and tag it with each of ``tags``; returns the commit."""
        self.write("VERSION", " ".join(tags) + "\n")
        sha = self.commit("release " + " ".join(tags))
        for name in tags:
            self.tag(name, sha, annotated=annotated)
        return sha

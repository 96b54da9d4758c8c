"""What one cold `go build` of the images' five binaries costs per platform, with no pipeline around it.

For the native platform and each of the five release platforms: the same command the compile stage runs
(pipeline/compile.py: the same packages, flags, ldflags and environment) with its own empty GOCACHE,
timed as wall seconds and as CPU seconds (user + system of go and every compiler and linker it ran: a
figure that other work on the machine changes much less than the wall time). Also the size of what
came out. This explains bench_platforms.py's ratio: the five-platform build cannot cost less than the
sum of these five compiles.

Usage: python tests/benchmarks/bench_crosscompile.py FORK_CHECKOUT [PLATFORM ...]
(a checkout of the real fork at its pinned tag; default platforms: the five release platforms).
Each compile loads both cores for a minute or more: run it on a quiet machine, and read the load
average printed beside each figure.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.golang import (
    compile,  # noqa: E402
    toolchain,  # noqa: E402
)
from pipeline.oci.descriptor import Platform  # noqa: E402
from pipeline.source.checkout import Checkout  # noqa: E402

PLATFORMS = ("linux/amd64", "linux/arm64", "linux/s390x", "linux/ppc64le", "linux/riscv64")


def load() -> str:
    return "load " + "/".join(f"{x:.1f}" for x in os.getloadavg())


def children_cpu() -> float:
    """CPU seconds (user + system) of every child process waited for so far, their children included."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fork_checkout(path: Path) -> Checkout:
    """The Checkout of a fork work tree at a release tag (what `invoke fork` would record)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(path), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    tag = git("describe", "--tags", "--exact-match", "HEAD")
    module = next(
        line.split()[1] for line in (path / "go.mod").read_text().splitlines() if line.startswith("module ")
    )
    return Checkout(
        url=str(path),
        tag=tag,
        commit=git("rev-parse", "HEAD"),
        version=tag.lstrip("v"),
        commit_time=int(git("log", "-1", "--format=%ct")),
        module=module,
        path=path.resolve(),
    )


@dataclass(frozen=True)
class Compile:
    platform: str
    wall: float
    cpu: float
    size: int  # bytes of the five binaries
    load: str


def plain_compile(checkout: Checkout, chain: toolchain.Toolchain, platform: str, work: Path) -> Compile:
    """One cold `go build` of the five binaries for ``platform``, as the compile stage runs it."""
    out = work / platform.replace("/", "-")
    gocache = work / (platform.replace("/", "-") + "-gocache")
    out.mkdir(parents=True)
    env = compile.go_env(chain, Platform.parse(platform), gocache, os.environ)
    argv = compile.build_argv(checkout, chain, out)
    cpu, started = children_cpu(), time.monotonic()
    subprocess.run(argv, cwd=checkout.path, env=env, check=True)
    wall, cpu = time.monotonic() - started, children_cpu() - cpu
    size = sum(f.stat().st_size for f in out.iterdir())
    shutil.rmtree(gocache, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    return Compile(platform, wall, cpu, size, load())


def native_platform() -> str:
    machine = os.uname().machine
    return "linux/" + {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    checkout = fork_checkout(Path(argv[0]))
    platforms = tuple(argv[1:]) or PLATFORMS
    chain = toolchain.find(checkout.path)
    work = Path(tempfile.mkdtemp(prefix="bench-crosscompile-"))
    rows: list[Compile] = []
    try:
        print(f"fork {checkout.tag} at {checkout.path}; {chain.version}; {os.cpu_count()} cores", flush=True)
        native = plain_compile(checkout, chain, native_platform(), work / "native")
        print(f"native {native.platform}: {native.wall:.1f} s wall, {native.cpu:.1f} s CPU ({native.load})")
        for platform in platforms:
            # the native platform's row is the native compile (it is the same command)
            row = (
                native
                if platform == native.platform
                else plain_compile(checkout, chain, platform, work / "cross")
            )
            rows.append(row)
            print(
                f"{platform}: {row.wall:.1f} s wall, {row.cpu:.1f} s CPU, {row.size / 2**20:.1f} MiB "
                f"({row.load})",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"{'platform':<15} {'wall s':>7} {'/native':>8} {'CPU s':>7} {'/native':>8} {'MiB':>6}  load")
    for row in [native, *rows]:
        print(
            f"{row.platform:<15} {row.wall:7.1f} {row.wall / native.wall:8.2f} {row.cpu:7.1f} "
            f"{row.cpu / native.cpu:8.2f} {row.size / 2**20:6.1f}  {row.load}"
        )
    total_wall, total_cpu = sum(r.wall for r in rows), sum(r.cpu for r in rows)
    print(
        f"{'sum of ' + str(len(rows)):<15} {total_wall:7.1f} {total_wall / native.wall:8.2f} "
        f"{total_cpu:7.1f} {total_cpu / native.cpu:8.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Benchmark of the five-platform build the scheduled jobs run, against the real fork. Prints:

- the cold build for linux/amd64, arm64, s390x, ppc64le and riscv64 (empty Go build cache, empty
  pipeline cache) as a ratio to one plain native `go build` of the same five binaries with the same
  flags and its own empty GOCACHE. Go cross-compiles, so each platform costs about one compile and the
  goal is <= 5.0: one compile per platform, nothing more;
- the rebuild with nothing changed (goal < 3 s);
- per platform, what its one `go build` cost inside the pipeline (wall and CPU seconds, the CPU
  figure being the one that other work on the machine changes least), and what the rest of the build
  (layers, gzip, the layout) cost: the ratio is explained by these, set beside
  bench_crosscompile.py's plain `go build` per platform.

Usage: python tests/benchmarks/bench_platforms.py [FORK_CHECKOUT]
(a checkout of the fork at a release tag; default: the fork stage's last record). Run it on a quiet machine: the load average is
printed beside each figure.
"""

# ruff: noqa: E402  (sys.path is set before the project is imported)
from __future__ import annotations

import os
import re
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.golang import toolchain  # noqa: E402
from pipeline.progress import Progress  # noqa: E402
from pipeline.stages import build  # noqa: E402
from tests.benchmarks.bench_build import _checkout, _load, plain_go_build  # noqa: E402
from tests.benchmarks.bench_crosscompile import children_cpu, fork_checkout  # noqa: E402
from tests.support import fixture_fork  # noqa: E402

PLATFORMS = ("linux/amd64", "linux/arm64", "linux/s390x", "linux/ppc64le", "linux/riscv64")
VARIANTS = ("executor", "debug", "slim", "warmer")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_COMPILING = re.compile(r"^compiling .* for (\S+) with ")
_COMPILED = re.compile(r"^(\S+): compiled in ")


class Timings(Progress):
    """Notes when each platform's `go build` starts and ends (from the compile stage's own messages),
    with the CPU seconds of the processes it ran (go, compile, link: waited for when it ends)."""

    def __init__(self) -> None:
        super().__init__(enabled=False)
        self.started: dict[str, tuple[float, float]] = {}
        self.compiles: dict[str, tuple[float, float, str]] = {}  # platform -> wall, CPU, load at the end

    def step(self, message: str) -> None:
        if match := _COMPILING.match(message):
            self.started[match.group(1)] = (time.monotonic(), children_cpu())

    def info(self, message: str) -> None:
        if (match := _COMPILED.match(message)) and match.group(1) in self.started:
            wall, cpu = self.started[match.group(1)]
            self.compiles[match.group(1)] = (time.monotonic() - wall, children_cpu() - cpu, _load())


def main(argv: list[str]) -> int:
    checkout = fork_checkout(Path(argv[0])) if argv else _checkout(argv)
    chain = toolchain.find(checkout.path)
    work = Path(tempfile.mkdtemp(prefix="bench-platforms-"))
    try:
        busybox = work / "busybox"
        fixture_fork.make_busybox_layout(busybox, PLATFORMS)
        print(f"fork {checkout.tag} at {checkout.path}; {chain.version}; {os.cpu_count()} cores", flush=True)
        (work / "plain").mkdir()
        cpu = children_cpu()
        t_native = plain_go_build(checkout, chain, work, work / "plain" / "gocache")
        cpu_native = children_cpu() - cpu
        print(f"plain native go build {t_native:.1f} s, {cpu_native:.1f} s CPU ({_load()})", flush=True)
        timings = Timings()

        def timed_build(out: str) -> tuple[float, dict[str, object]]:
            started = time.monotonic()
            result = build.build(
                checkout,
                build.BuildSpec(
                    out=work / out,
                    cache_dir=work / "cache",
                    gocache=work / "gocache",
                    platforms=PLATFORMS,
                    variants=VARIANTS,
                    busybox=str(busybox),
                ),
                progress=timings,
            )
            return time.monotonic() - started, result.to_dict()

        cpu, own = children_cpu(), own_cpu()
        t_cold, first = timed_build("out")
        cpu_cold, own = children_cpu() - cpu, own_cpu() - own
        print(
            f"pipeline cold build, {len(PLATFORMS)} platforms {t_cold:.1f} s, {cpu_cold:.1f} s CPU in "
            f"child processes, {own:.1f} s CPU in this process (layers, gzip, digests) ({_load()})",
            flush=True,
        )
        print()
        print(f"{'platform':<15} {'go build s':>10} {'/native':>8} {'CPU s':>7} {'/native':>8}  load after")
        for platform, (wall, cpu, load) in timings.compiles.items():
            print(
                f"{platform:<15} {wall:10.1f} {wall / t_native:8.2f} {cpu:7.1f} {cpu / cpu_native:8.2f}  {load}"
            )
        compiles = sum(wall for wall, _, _ in timings.compiles.values())
        compile_cpu = sum(cpu for _, cpu, _ in timings.compiles.values())
        print(
            f"{'all compiles':<15} {compiles:10.1f} {compiles / t_native:8.2f} {compile_cpu:7.1f} "
            f"{compile_cpu / cpu_native:8.2f}"
        )
        print(
            f"the rest of the cold build (checks, layers, gzip, layout): {t_cold - compiles:.1f} s "
            f"= {(t_cold - compiles) / t_native:.2f} of one native build",
            flush=True,
        )
        t_warm, again = timed_build("out")
        assert first["images"] == again["images"], "digests differ between builds"
        rows = [
            (
                f"cold {len(PLATFORMS)}-platform build / one native go build",
                f"{t_cold:.1f} s / {t_native:.1f} s = {t_cold / t_native:.2f}",
                "<= 5.0",
            ),
            (
                "the same in CPU seconds of child processes",
                f"{cpu_cold:.1f} s / {cpu_native:.1f} s = {cpu_cold / cpu_native:.2f}",
                "",
            ),
            ("rebuild, nothing changed", f"{t_warm:.2f} s", "< 3 s"),
        ]
        width = max(len(r[0]) for r in rows)
        print()
        print(f"{'measure'.ljust(width)}  {'figure':<30}  goal")
        for name, figure, goal in rows:
            print(f"{name.ljust(width)}  {figure:<30}  {goal}")
        print(f"({_load()})")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Benchmark of the five-platform build the scheduled jobs run, against the real fork. Prints:

- the cold build for linux/amd64, arm64, s390x, ppc64le and riscv64 (empty Go build cache, empty
  pipeline cache) as a ratio to one plain native `go build` of the same five binaries with the same
  flags and its own empty GOCACHE. Go cross-compiles, so each platform costs about one compile and the
  goal is <= 5.0: one compile per platform, nothing more;
- the rebuild with nothing changed (goal < 3 s).

Usage: python tests/benchmarks/bench_platforms.py [FORK_CHECKOUT]
(default checkout: the fork stage's last record). Run it on a quiet machine: the load average is
printed beside each figure.
"""

# ruff: noqa: E402  (sys.path is set before the project is imported)
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.golang import toolchain  # noqa: E402
from pipeline.stages import build as build_stage  # noqa: E402
from tests.benchmarks.bench_build import _checkout, _load, plain_go_build  # noqa: E402
from tests.support import fixture_fork  # noqa: E402

PLATFORMS = ("linux/amd64", "linux/arm64", "linux/s390x", "linux/ppc64le", "linux/riscv64")
VARIANTS = ("executor", "debug", "slim", "warmer")


def main(argv: list[str]) -> int:
    checkout = _checkout(argv)
    chain = toolchain.find(checkout.path)
    work = Path(tempfile.mkdtemp(prefix="bench-platforms-"))
    try:
        busybox = work / "busybox"
        fixture_fork.make_busybox_layout(busybox, PLATFORMS)
        print(f"fork {checkout.tag} at {checkout.path}; {chain.version}; {os.cpu_count()} cores", flush=True)
        (work / "plain").mkdir()
        t_native = plain_go_build(checkout, chain, work, work / "plain" / "gocache")
        print(f"plain native go build {t_native:.1f} s ({_load()})", flush=True)

        def build(out: str) -> tuple[float, dict[str, object]]:
            started = time.monotonic()
            result = build_stage.build(
                checkout,
                out=work / out,
                cache_dir=work / "cache",
                gocache=work / "gocache",
                platforms=PLATFORMS,
                variants=VARIANTS,
                busybox=str(busybox),
            )
            return time.monotonic() - started, result.to_dict()

        t_cold, first = build("out")
        print(f"pipeline cold build, {len(PLATFORMS)} platforms {t_cold:.1f} s ({_load()})", flush=True)
        t_warm, again = build("out")
        assert first["images"] == again["images"], "digests differ between builds"
        rows = [
            (
                f"cold {len(PLATFORMS)}-platform build / one native go build",
                f"{t_cold:.1f} s / {t_native:.1f} s = {t_cold / t_native:.2f}",
                "<= 5.0",
            ),
            ("rebuild, nothing changed", f"{t_warm:.2f} s", "< 3 s"),
        ]
        width = max(len(r[0]) for r in rows)
        print()
        print(f"{'measure'.ljust(width)}  {'figure':<30}  goal")
        for name, figure, goal in rows:
            print(f"{name.ljust(width)}  {figure:<30}  {goal}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

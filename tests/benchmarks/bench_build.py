"""Benchmark of the build stage against the real fork, for one platform. Prints, side by side:

- a cold build (empty Go build cache, empty pipeline cache) as a ratio to a plain `go build` of the
  same five binaries with the same flags and its own empty GOCACHE (goal <= 1.10);
- a rebuild with nothing changed (goal <= 3 s);
- peak memory of the assembly (tracemalloc peak of the Python heap, and the process's max RSS; the Go
  compiler runs in child processes and is not counted).

Usage: python tests/benchmarks/bench_build.py [--rounds N] [FORK_CHECKOUT]
(default checkout: the fork stage's last record). With N rounds the cold builds alternate (plain,
pipeline, plain, ...) and the fastest of each side is compared, which damps other load on the machine;
the load average is printed with each figure so a reader can judge.
"""

# ruff: noqa: E402  (sys.path is set before the project is imported)
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline import config, record  # noqa: E402
from pipeline.golang import (
    compile,  # noqa: E402
    toolchain,
)
from pipeline.oci.descriptor import Platform  # noqa: E402
from pipeline.source.checkout import Checkout  # noqa: E402
from pipeline.stages import build  # noqa: E402
from tests.support import fixture_fork  # noqa: E402

PLATFORM = "linux/amd64"
VARIANTS = ("executor", "debug", "slim", "warmer")


def _checkout(argv: list[str]) -> Checkout:
    settings = config.Settings.load({})
    data = record.stage(settings.record_file, "fork", needed_by="the build benchmark")
    checkout = Checkout.from_dict(data)
    if argv:
        checkout = Checkout(**{**checkout.__dict__, "path": Path(argv[0]).resolve()})
    return checkout


def _load() -> str:
    return "load " + "/".join(f"{x:.1f}" for x in os.getloadavg())


def plain_go_build(checkout: Checkout, chain: toolchain.Toolchain, work: Path, gocache: Path) -> float:
    env = compile.go_env(chain, Platform.parse(PLATFORM), gocache, os.environ)
    argv = compile.build_argv(checkout, chain, gocache.parent / "plain")
    started = time.monotonic()
    subprocess.run(argv, cwd=checkout.path, env=env, check=True)
    return time.monotonic() - started


def main(argv: list[str]) -> int:
    rounds = 1
    if argv[:1] == ["--rounds"]:
        rounds, argv = int(argv[1]), argv[2:]
    checkout = _checkout(argv)
    chain = toolchain.find(checkout.path)
    work = Path(tempfile.mkdtemp(prefix="bench-build-"))
    try:
        busybox = work / "busybox"
        fixture_fork.make_busybox_layout(busybox, (PLATFORM,))
        print(f"fork {checkout.tag} at {checkout.path}; {chain.version}; {os.cpu_count()} cores", flush=True)

        def run(out: str, n: int = 0) -> tuple[float, dict[str, object]]:
            started = time.monotonic()
            result = build.build(
                checkout,
                build.BuildSpec(
                    out=work / out,
                    cache_dir=work / f"cache{n}",
                    gocache=work / f"gocache-pipeline{n}",
                    platforms=[PLATFORM],
                    variants=VARIANTS,
                    busybox=str(busybox),
                ),
            )
            return time.monotonic() - started, result.to_dict()

        plain_times, cold_times = [], []
        first: dict[str, object] = {}
        for n in range(rounds):
            (work / f"r{n}").mkdir()
            plain_times.append(plain_go_build(checkout, chain, work, work / f"r{n}" / "gocache-plain"))
            print(f"round {n + 1}: plain go build {plain_times[-1]:.1f} s ({_load()})", flush=True)
            t_cold, first = run("out-cold", n)
            cold_times.append(t_cold)
            print(f"round {n + 1}: pipeline cold build {t_cold:.1f} s ({_load()})", flush=True)
        t_go, t_cold = min(plain_times), min(cold_times)
        t_re, second = run("out-cold", rounds - 1)
        t_re_new, third = run("out-again", rounds - 1)
        assert first["images"] == second["images"] == third["images"], "digests differ between builds"
        # Assembly alone: binaries cached, layer cache emptied.
        shutil.rmtree(work / f"cache{rounds - 1}" / "layers")
        tracemalloc.start()
        started = time.monotonic()
        run("out-assembly", rounds - 1)
        t_assembly = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows = [
            (
                "cold build / plain go build",
                f"{t_cold:.1f} s / {t_go:.1f} s = {t_cold / t_go:.3f}",
                "<= 1.10",
            ),
            ("rebuild, nothing changed (same out)", f"{t_re:.2f} s", "<= 3 s"),
            ("rebuild, nothing changed (new out dir)", f"{t_re_new:.2f} s", "<= 3 s"),
            ("assembly alone (layers recompressed)", f"{t_assembly:.1f} s", ""),
            ("assembly peak Python heap (tracemalloc)", f"{peak / 2**20:.1f} MiB", ""),
            ("benchmark process max RSS", f"{maxrss:.0f} MiB", ""),
        ]
        width = max(len(r[0]) for r in rows)
        print()
        print(f"{'measure'.ljust(width)}  {'figure':<34}  goal")
        for name, figure, goal in rows:
            print(f"{name.ljust(width)}  {figure:<34}  {goal}")
        print(json.dumps({"digests": first["images"]}, sort_keys=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

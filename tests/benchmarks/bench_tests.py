"""Benchmark: the contributor's loop, `invoke test --quick`, on an empty cache (cold) and then again on the
caches the first run filled (warm), with the wall time, the CPU time of the test processes and the load
average, and each run's slowest test modules (from pytest's own report of each test's phases).

Usage: python tests/benchmarks/bench_tests.py [--workers N|auto] [--all]
--all times `invoke test` (README's test command) instead of --quick. Goals, on 2 quiet cores: --quick warm
at most 120 s; the whole of .ci/run (which runs `invoke test` as root cold, then the podman tests as an
ordinary user) at most 12 minutes. A loaded machine shows in the load average printed beside each figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(cache: Path, workers: str, everything: bool, report: Path) -> tuple[float, float, int]:
    """One `invoke test` run with XDG_CACHE_HOME at ``cache``: wall seconds, CPU seconds of the
    processes it waited for, and its exit status."""
    argv = [sys.executable, "-m", "invoke", "test", "--workers", workers]
    if not everything:
        argv.append("--quick")
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYTEST_ADDOPTS": f"--junitxml={report}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result.returncode


def slowest_modules(report: Path, count: int = 8) -> list[tuple[str, float, int]]:
    """(module, seconds, tests) from the JUnit report, slowest first (setup and teardown included)."""
    seconds: dict[str, float] = defaultdict(float)
    tests: dict[str, int] = defaultdict(int)
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        parts = case.get("classname", "?").split(".")  # tests.integration.test_x[.TestClass]
        module = ".".join(parts[:-1] if parts[-1][:1].isupper() else parts)
        seconds[module] += float(case.get("time", "0"))
        tests[module] += 1
    ranked = sorted(seconds.items(), key=lambda item: -item[1])[:count]
    return [(module, spent, tests[module]) for module, spent in ranked]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="auto")
    parser.add_argument("--all", action="store_true", help="time `invoke test` instead of --quick")
    args = parser.parse_args()
    what = "invoke test" if args.all else "invoke test --quick"
    with tempfile.TemporaryDirectory(prefix="kp-bench-tests-") as tmp:
        cache = Path(tmp) / "cache"
        cache.mkdir()
        for label in ("cold", "warm"):
            report = Path(tmp) / f"{label}.xml"
            load = os.getloadavg()[0]
            wall, cpu, status = run(cache, args.workers, args.all, report)
            print(
                f"{what} --workers {args.workers}, {label}: {wall:6.1f} s wall, {cpu:6.1f} s CPU, "
                f"exit {status}, load {load:.1f} -> {os.getloadavg()[0]:.1f}"
                + ("" if args.all or label == "cold" else "  (goal <= 120 s on 2 quiet cores)")
            )
            if report.is_file():
                for module, spent, tests in slowest_modules(report):
                    print(f"    {spent:7.1f} s  {tests:4d} tests  {module}")


if __name__ == "__main__":
    main()

"""Benchmark: `invoke fork --url MIRROR --ref latest`, cold (first clone) and warm (cached clone).

Usage: python tests/benchmarks/bench_fork.py /path/to/kaniko-mirror [runs]
Prints the wall time of each run; the goal for a warm run is at most 2 s.
"""

# ruff: noqa: E402  (sys.path is set before the project is imported)
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(mirror: str, cache: Path) -> tuple[float, dict[str, object]]:
    env = {**os.environ, "INVOKE_PIPELINE_CACHE_DIR": str(cache)}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "fork", "--url", mirror, "--ref", "latest", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - start, json.loads(result.stdout)


def main() -> None:
    mirror = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("KANIKO_FORK_URL", "")
    if not mirror:
        sys.exit("usage: bench_fork.py MIRROR [runs]  (or set KANIKO_FORK_URL)")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        cold, result = run(mirror, cache)
        print(f"fork --ref latest -> {result['tag']} ({str(result['commit'])[:12]})")
        print(f"cold (clone + checkout):  {cold:6.2f} s")
        warm = [run(mirror, cache)[0] for _ in range(runs)]
        print(
            f"warm (fetch + checkout):  min {min(warm):.2f} s  max {max(warm):.2f} s  over {runs} runs (goal <= 2 s)"
        )


if __name__ == "__main__":
    main()

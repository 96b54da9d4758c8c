"""Benchmark: the conformance stage, warm, on this machine (the goal: quick subset < 60 s, full < 5 min).

Usage: python tests/benchmarks/bench_conformance.py VARIANT=REF@sha256:... [...] [--fork CHECKOUT] [CACHE_DIR]
Give each published variant (executor, debug, slim, warmer) by digest, e.g. from `invoke publish --json`.
A first quick run warms the caches (stand-in bases, buildah's storage, the executor images in podman);
then it prints the seconds of the quick subset, of the full repository suite, and, with --fork, of the
fork's own integration Dockerfiles, with each run's totals.
"""

# ruff: noqa: E402  (sys.path is set before the project is imported)
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.config import default_cache_dir  # noqa: E402
from pipeline.services.podman import Podman  # noqa: E402
from pipeline.stages.conformance import stage  # noqa: E402


def _run(
    refs: dict[str, str], cache: Path, *, quick: bool, fork: Path | None, cases: bool = True
) -> dict[str, object]:
    plan = stage.plan(
        executors=stage.parse_executors("", list(refs), refs),
        cases_dir=None,
        quick=quick,
        reference="buildah",
        fork_checkout=fork,
    )
    if not cases:  # the fork's Dockerfiles alone, executor only
        plan = stage.Plan(
            {"executor": plan.executors["executor"]},
            [c for c in plan.cases if c.name.startswith("fork-")],
            plan.reference,
            plan.needs_debian,
        )
    start = time.perf_counter()
    result = stage.execute(plan, podman=Podman(cache), cache_dir=cache)
    return {"seconds": round(time.perf_counter() - start, 1), "totals": result.to_dict()["totals"]}


def main(argv: list[str]) -> dict[str, object]:
    refs = dict(arg.split("=", 1) for arg in argv if "=" in arg and not arg.startswith("--"))
    fork = Path(argv[argv.index("--fork") + 1]) if "--fork" in argv else None
    rest = [a for a in argv if "=" not in a and not a.startswith("--") and (fork is None or a != str(fork))]
    cache = Path(rest[0]) if rest else default_cache_dir(dict(os.environ))
    out: dict[str, object] = {"variants": sorted(refs)}
    out["warm_up"] = _run(refs, cache, quick=True, fork=None)
    out["quick"] = _run(refs, cache, quick=True, fork=None)
    out["full"] = _run(refs, cache, quick=False, fork=None)
    if fork is not None:
        out["fork_dockerfiles"] = _run(refs, cache, quick=False, fork=fork, cases=False)
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))

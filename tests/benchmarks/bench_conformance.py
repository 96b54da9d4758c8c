"""Benchmark: the conformance stage per suite, warm, on this machine, beside the figures before the suites
became pinned inputs (issue 23: a release's conformance stage 387 s, of which 357 s the fork's
Dockerfiles; the gating repository suite 25 s). Goals, warm on 2 cores: the gating part <= 60 s, every
suite that runs offline <= 180 s.

Usage: python tests/benchmarks/bench_conformance.py VARIANT=REF@sha256:... [...] [--suite NAME]... [--mode NAME]...
       [CACHE_DIR]
Give each published variant by digest (e.g. from `invoke publish --json`); suites default to repository,
fork and buildah (offline: KANIKO_FORK_URL and KANIKO_PIPELINE_BUILDAH_URL name local mirrors).
For each suite it runs once to warm everything (stand-in bases, buildah's storage and kept images, the
executor in podman, the kept results), then prints the seconds of three warm runs (``--mode NAME``,
repeatable, picks some): ``rebuilt`` builds every case again with kaniko and buildah (nothing kept is
used), ``new-executor`` is what a release of a new executor waits for (every case built with kaniko,
buildah's images of the unchanged cases and bases kept: the kept kaniko results are removed first), and
``retest`` is a re-test of the same executor (nothing that did not change is rebuilt). Each run's totals
and outcomes come with it.
"""

# ruff: noqa: E402  (sys.path is set before the project is imported)
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.config import Settings  # noqa: E402
from pipeline.services.podman import Podman  # noqa: E402
from pipeline.stages.conformance import conformance_report, stage  # noqa: E402

TODAY = {
    "release_conformance_stage_s": 387,
    "of_which_fork_dockerfiles_s": 357,
    "gating_repository_suite_s": 25,
}
GOALS = {"gating_s": 60, "each_offline_suite_s": 180}
MODES = ("rebuilt", "new-executor", "retest")


def _run(plan: stage.Plan, settings: Settings, *, remember: bool) -> dict[str, object]:
    start = time.perf_counter()
    result = stage.execute(
        plan, podman=Podman(settings.cache_dir), cache_dir=settings.cache_dir, remember=remember
    )
    seconds = round(time.perf_counter() - start, 1)
    suites = {item["suite"]: item for item in conformance_report.suites(result)}
    return {"seconds": seconds, "totals": result.to_dict()["totals"], "suites": suites}


def main(argv: list[str]) -> dict[str, object]:
    refs = dict(arg.split("=", 1) for arg in argv if "=" in arg and not arg.startswith("--"))
    if not refs:
        raise SystemExit(
            "give each variant to test by digest, e.g. executor=REGISTRY/kaniko-executor@sha256:... "
            "(from `invoke publish --json`); see this file's docstring"
        )
    names = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--suite"] or [
        "repository",
        "fork",
        "buildah",
    ]
    modes = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--mode"] or list(MODES)
    if not set(modes) <= set(MODES):
        raise SystemExit(
            f"--mode is one of {', '.join(MODES)}, not {', '.join(sorted(set(modes) - set(MODES)))}"
        )
    options = ("--suite", "--mode")
    rest = [
        a
        for i, a in enumerate(argv)
        if "=" not in a and a not in options and (i == 0 or argv[i - 1] not in options)
    ]
    overrides = {"cache_dir": rest[0]} if rest else {}
    settings = Settings.load(overrides, env=dict(os.environ))
    executors = stage.parse_executors("", list(refs), refs)
    out: dict[str, object] = {
        "variants": sorted(refs),
        "today": TODAY,
        "goals": GOALS,
        "cpus": os.cpu_count(),
    }
    for name, folder in stage.fetch_suites(settings, names):
        plan = stage.plan(
            executors=executors,
            cases_dir=None,
            quick=False,
            reference="buildah",
            suite_folders=[(name, folder)],
        )
        _run(plan, settings, remember=True)  # warm up: every cache, and the kept results
        runs: dict[str, object] = {}
        for mode in modes:
            if mode == "new-executor":  # kaniko's kept results go; buildah's kept images stay
                shutil.rmtree(settings.cache_dir / "conformance" / "memo" / "result", ignore_errors=True)
            runs[mode] = _run(plan, settings, remember=mode != "rebuilt")
        out[name] = runs
    return out


if __name__ == "__main__":
    from pipeline.errors import PipelineError

    try:
        print(json.dumps(main(sys.argv[1:]), indent=2))
    except PipelineError as exc:
        raise SystemExit(f"error: {exc}") from None

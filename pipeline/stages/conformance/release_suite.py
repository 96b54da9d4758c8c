"""The conformance stage of a release (`invoke release`): the release's plan, run on one machine
(:func:`for_release`), or in shards, one CI job each (:func:`for_shard`), joined back before the test
result is signed (:func:`join_shards`; shards.py). Either way a case that passed with the previous released
executor and fails now gates (regressions.py), and a failure stops the release before the rolling tags.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import record
from pipeline.config import VARIANTS
from pipeline.errors import ConformanceError, UsageError
from pipeline.progress import Progress
from pipeline.stages.conformance import regressions, suites
from pipeline.stages.conformance.regressions import Baseline
from pipeline.stages.conformance.result import ConformanceMode, ConformanceResult
from pipeline.stages.conformance.shards import ReleaseUnderTest, Shard, ShardResult, join
from pipeline.stages.conformance.stage import Plan, execute, fetch_suites, parse_executors, plan
from pipeline.stages.conformance.upstream import BaseChoice

if TYPE_CHECKING:
    from pipeline.config import Settings

MODES: tuple[ConformanceMode, ...] = ("full", "quick", "off")


def check_mode(mode: str) -> ConformanceMode:
    for known in MODES:
        if mode == known:
            return known
    raise UsageError(f"--conformance {mode!r} is not known", hint="use --conformance full, quick or off")


def release_plan(
    settings: Settings,
    published: Mapping[str, str],
    *,
    mode: str,
    fork_checkout: Path | None = None,
    progress: Progress | None = None,
    suite_names: Sequence[str] = (),
    base_choice: BaseChoice | None = None,
) -> Plan:
    """The release's plan: every published variant (``published``: variant -> REF@DIGEST) on the suite
    (``mode`` full or quick; full adds the fork checkout's own integration Dockerfiles; ``suite_names``
    chooses the suites instead, the fork's from the checkout being released). ``base_choice``: the
    stand-ins or real bases (upstream.py; default auto)."""
    if mode not in MODES or mode == "off":
        raise UsageError(
            f"conformance mode {mode!r} cannot run", hint="use full or quick (off skips the stage)"
        )
    executors = parse_executors("", [v for v in VARIANTS if v in published], published)
    folders = []
    for name in suite_names:
        if name == suites.FORK and fork_checkout is not None:
            folders.append((name, fork_checkout / suites.FORK_PATH))
        else:
            folders += fetch_suites(settings, [name], progress)
    return plan(
        executors=executors,
        cases_dir=None,
        quick=mode == "quick",
        reference="buildah",
        fork_checkout=fork_checkout if mode == "full" else None,
        suite_folders=folders,
        real_bases=(base_choice or BaseChoice()).check().choose(progress),
    )


def for_release(
    settings: Settings,
    the_plan: Plan,
    *,
    progress: Progress | None = None,
    previous: Baseline | None = None,
) -> ConformanceResult:
    """Run the release's plan on this machine. ``previous``: the previous release's verified results; a
    case that passed there and fails now gates. Returns the result; raise_for_failure then stops the
    release, so rolling tags stay."""
    from pipeline.services.podman import Podman

    result = execute(
        the_plan,
        podman=Podman(settings.cache_dir, progress=progress),
        cache_dir=settings.cache_dir,
        progress=progress,
    )
    regressions.apply(result, previous)
    record.save(settings.record_file, "conformance", result.to_dict())
    return result


def for_shard(
    settings: Settings,
    the_plan: Plan,
    shard: Shard,
    release: ReleaseUnderTest,
    progress: Progress | None = None,
) -> ShardResult:
    """Run ``shard``'s part of the release's plan on this machine: the shard job's result (written by the
    caller). Regressions are judged when the shards are joined."""
    from pipeline.services.podman import Podman

    result = execute(
        the_plan,
        podman=Podman(settings.cache_dir, progress=progress),
        cache_dir=settings.cache_dir,
        progress=progress,
        shard=shard,
    )
    return ShardResult(shard, release.version, release.tag, release.commit, dict(release.executors), result)


def join_shards(
    settings: Settings,
    the_plan: Plan,
    paths: Sequence[Path],
    release: ReleaseUnderTest,
    previous: Baseline | None = None,
) -> ConformanceResult:
    """The shard jobs' results (``paths``), checked against this release and its plan and joined into its one
    result (shards.py), regressions judged as on one machine."""
    result = join([(path, ShardResult.read(path)) for path in paths], the_plan.cases, release)
    regressions.apply(result, previous)
    record.save(settings.record_file, "conformance", result.to_dict())
    return result


def raise_for_failure(result: ConformanceResult) -> None:
    if result.ok:
        return
    regressed = [case for case in result.failed() if case.regression]
    first = (regressed + [case for case in result.failed() if not case.regression])[:3]
    raise ConformanceError(
        f"the conformance suite failed: {result.summary()}; "
        + (f"regressions: {', '.join(c.test_name for c in regressed)}; " if regressed else "")
        + "first: "
        + "; ".join(f"{c.variant} {c.name}: {c.reason.splitlines()[0] if c.reason else ''}" for c in first),
        hint="see the conformance section of the release report; rolling tags were not moved",
    )

"""The conformance stage (`invoke conformance`, and `invoke release` between build-image and smoke):
prove each published executor variant on real builds, checked against buildah.

Inputs are checked before anything starts (cases, executor references by digest, buildah installed);
then a private local registry on a free port serves the stand-in bases as kaniko's docker.io mirror
(and takes the cache and push cases), buildah gets the same bases, and every case runs with every
building variant. With real bases (``--bases``, upstream.py) a pull-through cache is kaniko's docker.io
mirror and buildah's docker.io instead. The registries and scratch files are gone afterwards, whatever
happened.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import record
from pipeline.config import VARIANTS
from pipeline.errors import RecordError, ToolError, UsageError
from pipeline.progress import Progress, Silent
from pipeline.registry.reference import Reference
from pipeline.stages.conformance import (
    cases,
    contexts,
    forkcases,
    layouts,
    matrix,
    suites,
    upstream,
    variants,
)
from pipeline.stages.conformance.builders import Kaniko
from pipeline.stages.conformance.cases import Case
from pipeline.stages.conformance.memo import Memo
from pipeline.stages.conformance.result import ConformanceResult
from pipeline.stages.conformance.runner import Context, run_cases
from pipeline.stages.conformance.shards import Shard
from pipeline.stages.conformance.upstream import BaseChoice, Upstream
from pipeline.stages.publish import recorded_images

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.services.podman import Podman

REFERENCES = ("buildah", "none")


@dataclass(frozen=True)
class Plan:
    executors: Mapping[str, Reference]  # variant -> image by digest
    cases: Sequence[Case]
    reference: str = "buildah"
    needs_debian: bool = False
    upstream: Upstream | None = None  # real bases through a pull-through cache (None: the stand-ins)


def parse_executors(
    executor: str, variant_names: Sequence[str], published: Mapping[str, str]
) -> dict[str, Reference]:
    """The images to test: ``--executor`` (as the executor variant), else the published record's."""
    unknown = [name for name in variant_names if name not in VARIANTS]
    if unknown:
        raise UsageError(
            f"unknown variant(s) {', '.join(unknown)}", hint="variants are " + ", ".join(VARIANTS)
        )
    if executor:
        ref = Reference.parse(executor)
        if not ref.digest:
            raise UsageError(
                f"the executor {executor} is not named by digest",
                hint="pass --executor REGISTRY/REPO@sha256:... (a tag can move between the test and the release)",
            )
        return {"executor": ref}
    wanted = list(variant_names) or list(VARIANTS)
    found = {name: Reference.parse(published[name]) for name in wanted if name in published}
    if not found:
        raise RecordError(
            "no published executor image to test",
            hint="run `invoke publish` first, or pass --executor REGISTRY/REPO@sha256:...",
        )
    return found


def recorded_checkout(settings: Settings, tag: str = "") -> Path | None:
    """The fork checkout the fork stage recorded (its integration Dockerfiles join the full suite);
    with ``tag``, only when it is that release's."""
    from pipeline.stages import fork

    checkout = fork.last_checkout(settings.record_file)
    if checkout is None or (tag and checkout.tag != tag):
        return None
    return checkout.path if checkout.path.is_dir() else None


def plan(
    *,
    executors: Mapping[str, Reference],
    cases_dir: Path | None,
    quick: bool,
    reference: str,
    fork_checkout: Path | None = None,
    suite_folders: Sequence[tuple[str, Path]] = (),
    real_bases: Upstream | None = None,
) -> Plan:
    """Everything checked before anything runs: a bad input is a UsageError (exit 2).

    ``suite_folders``: (suite name, fetched folder) pairs (suites.py); with them, only those suites run
    (``repository`` is this repository's suite); without them, the repository suite (or ``cases_dir``)
    and the fork checkout's Dockerfiles, as before ``--suite``. ``real_bases``: the upstream whose
    Docker Hub images the cases build on (upstream.py), instead of the offline stand-ins."""
    check_reference(reference)
    if reference == "buildah" and shutil.which("buildah") is None:
        raise UsageError(
            "buildah is not installed, and the conformance stage compares every case with buildah's image",
            hint="run `invoke setup` (Debian package buildah), or pass --reference none to skip the comparison",
        )
    if suite_folders:
        loaded = []
        for name, folder in suite_folders:
            if name == suites.REPOSITORY:
                loaded += cases.load(folder, quick=quick)
            elif not quick:
                loaded += layouts.load(folder, name)
    else:
        loaded = cases.load(cases_dir, quick=quick)
        if cases_dir is not None:
            loaded = [replace(case, suite=contexts.USERS_OWN) for case in loaded]
        if fork_checkout is not None and not quick:
            loaded += forkcases.load(fork_checkout)
    if real_bases is None:
        loaded = [_offline(case) for case in loaded]
    else:
        loaded = [upstream.recheck(case, real_bases) for case in loaded]
    names = [case.name for case in loaded]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise UsageError(
            f"two suites name the same case: {', '.join(twice[:5])}", hint="run those suites separately"
        )
    needs_debian = real_bases is None and any(_uses_debian(case) for case in loaded if not case.skip)
    return Plan(executors, loaded, reference, needs_debian, real_bases)


def check_reference(reference: str) -> None:
    if reference not in REFERENCES:
        raise UsageError(
            f"--reference {reference!r} is not known", hint="use --reference buildah or --reference none"
        )


def _offline(case: Case) -> Case:
    """Skipped at once, with the reason, when its base has no stand-in here or it needs the network."""
    if case.skip:
        return case
    text = (case.directory / case.dockerfile).read_text(encoding="utf-8", errors="replace")
    reason = forkcases.skip_reason(text, dict(case.build_args))
    return replace(case, skip=reason) if reason else case


def _uses_debian(case: Case) -> bool:
    text = (case.directory / case.dockerfile).read_text(encoding="utf-8", errors="replace").lower()
    return "debian" in text or any("debian" in v for v in case.build_args.values())


def execute(
    the_plan: Plan,
    *,
    podman: Podman,
    cache_dir: Path,
    progress: Progress | None = None,
    remember: bool = True,
    shard: Shard | None = None,
) -> ConformanceResult:
    """Run the plan; returns the typed result (never raises for a failing case). ``remember``: reuse and
    keep results and buildah's images between runs (memo.py); False builds everything again. ``shard``:
    only that part of the plan's cases (and the variant proofs in the first part; shards.py)."""
    from pipeline.services.distribution import LocalRegistry

    progress = progress or Silent()
    started = time.monotonic()
    the_plan = replace(the_plan, cases=contexts.committed(the_plan.cases, cache_dir))
    proving = any(case.suite in ("repository", "cases") for case in the_plan.cases)
    running = the_plan.cases
    mine: set[str] | None = None  # the cases this run runs (None: all it prepares)
    if shard is not None:  # its part, and the cases the proofs build when it proves: in the plan's order
        proving = proving and shard.proves
        mine = {case.name for case in shard.select(running)}
        kept = mine | {case.name for case in shard.extra_cases(running)}
        running = [case for case in running if case.name in kept]
        progress.step(f"conformance: shard {shard}, {len(mine)} of {len(the_plan.cases)} cases")
    executor_name = str(the_plan.executors.get("executor") or next(iter(the_plan.executors.values())))
    result = ConformanceResult(executor=executor_name, reference=the_plan.reference)
    if the_plan.upstream is not None:
        result.bases = the_plan.upstream.describe()
    scratch = Path(tempfile.mkdtemp(prefix="kp-conformance-"))
    registry = LocalRegistry(scratch / "registry")
    borrowed = contextlib.ExitStack()  # the executor images, held until the last check is done
    stops = contextlib.ExitStack()  # the pull-through cache, when there is one
    try:
        registry.start()
        found = upstream.prepare(
            the_plan.upstream,
            running,
            reference=the_plan.reference,
            needs_debian=the_plan.needs_debian,
            cache_dir=cache_dir,
            registry_host=registry.host,
            stack=stops,
            progress=progress,
        )
        builders = {
            variant: Kaniko(podman, ref, registry.host, found.mirror)
            for variant, ref in the_plan.executors.items()
        }
        for variant, builder in builders.items():
            progress.step(f"conformance: pulling the {variant} image {builder.executor}")
            ref = builder.executor
            borrowed.enter_context(podman.borrowed(str(ref), tls_verify=not ref.is_loopback))
        ctx = Context(builders, found.reference, registry.host, scratch / "work", progress)
        ctx.workdir.mkdir()
        if remember:
            version = found.reference.version() if found.reference else ""
            ctx.memo = Memo(Path(cache_dir) / "conformance" / "memo", version)
            ctx.bases, ctx.case_bases = found.digests, found.case_digests
        ran = found.cases if mine is None else [case for case in found.cases if case.name in mine]
        try:
            result.cases += run_cases(ctx, ran, list(builders))
        finally:
            ctx.pool.shutdown(wait=True, cancel_futures=True)
        if proving:  # the repository suite's own proofs
            result.cases += [
                replace(proof, suite="variant-proofs")
                for proof in variants.prove_all(ctx, found.cases, builders, registry.host)
            ]
        result.matrix = {name: matrix.describe(needs) for name, needs in ctx.needs.items()}
        result.pulls = found.cache.pulls() if found.cache is not None else {}
    finally:
        registry.stop()
        stops.close()
        shutil.rmtree(scratch, ignore_errors=True)
        borrowed.close()  # removes what this run pulled, unless another run still uses it
    result.seconds = time.monotonic() - started
    return result


def run(
    settings: Settings,
    *,
    executor: str = "",
    variant_names: Sequence[str] = (),
    cases_dir: str = "",
    suite_names: Sequence[str] = (),
    quick: bool = False,
    reference: str = "buildah",
    progress: Progress | None = None,
    base_choice: BaseChoice | None = None,
) -> ConformanceResult:
    """`invoke conformance`: check the inputs, run, record the result in the run record. ``base_choice``:
    the stand-ins or real bases (``--bases``, ``--upstream``; upstream.py)."""
    from pipeline.services.podman import Podman

    progress = progress or Silent()
    check_reference(reference)  # before the run record is read
    base_choice = (base_choice or BaseChoice()).check()
    executors = parse_executors(
        executor, variant_names, {} if executor else recorded_images(settings.record_file)
    )
    if suite_names and cases_dir:
        raise UsageError("--cases and --suite do not go together", hint="name the suites, or one --cases DIR")
    the_plan = plan(
        executors=executors,
        cases_dir=Path(cases_dir) if cases_dir else None,
        quick=quick,
        reference=reference,
        fork_checkout=None if cases_dir or suite_names else recorded_checkout(settings),
        suite_folders=fetch_suites(settings, suite_names, progress),
        real_bases=base_choice.choose(progress),
    )
    try:
        podman = Podman(settings.cache_dir, progress=progress)
    except ToolError as exc:
        raise UsageError(exc.message, hint=exc.hint) from None
    result = execute(the_plan, podman=podman, cache_dir=settings.cache_dir, progress=progress)
    record.save(settings.record_file, "conformance", result.to_dict())
    return result


def fetch_suites(
    settings: Settings, names: Sequence[str], progress: Progress | None = None
) -> list[tuple[str, Path]]:
    """Each ``--suite`` (a name or URL@COMMIT:PATH) fetched at its pinned commit: (name, folder)."""
    from pipeline.source import pinfile

    fork_commit = ""
    if suites.FORK in names:
        fork_commit = pinfile.load(settings.pin_file).commit
    out: list[tuple[str, Path]] = []
    for name in dict.fromkeys(names):
        source = suites.named(name, fork_url=settings.fork_url, fork_commit=fork_commit)
        out.append((source.name, suites.fetch(source, settings.cache_dir, progress)))
    return out

"""Run the cases: each case with each building variant of the executor (README profile; the capability
matrix's extra capabilities when it needs them), its checks, and the comparison with buildah's image."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline.errors import ImageError, PipelineError
from pipeline.progress import Progress, Silent
from pipeline.registry.reference import Reference
from pipeline.stages.conformance import case_checks, compare, matrix, memo, snapshot
from pipeline.stages.conformance.builders import Buildah, BuilderRun, Kaniko
from pipeline.stages.conformance.cases import Case
from pipeline.stages.conformance.result import ALWAYS, CaseOutcome, CaseResult

MAX_DIFFERENCES = 10
BUILD_VARIANTS = ("executor", "slim", "debug")  # the variants whose entrypoint is the executor
WORKERS = max(1, os.cpu_count() or 1)  # one case per CPU: each mostly waits on kaniko or buildah


@dataclass
class Context:
    """What every case run shares: the builders, a scratch directory, and what was learnt so far."""

    builders: Mapping[str, Kaniko]  # variant -> the executor under test in that variant
    reference: Buildah | None
    registry_host: str
    workdir: Path
    progress: Progress = field(default_factory=Silent)
    skopeo: str | None = field(default_factory=lambda: shutil.which("skopeo"))
    needs: dict[str, tuple[str, ...] | None] = field(default_factory=dict)  # case -> caps found (None: fails)
    # buildah's image of each case (or why there is none), built on one worker thread beside kaniko
    reference_images: dict[str, Future[snapshot.Snapshot | str]] = field(default_factory=dict)
    # one buildah build at a time: a failed bud's working containers are found by what appeared during it
    # (--force-rm would change the image), which a second build at the same time would confuse
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=1))
    memo: memo.Memo | None = None  # results and buildah's images kept between runs (None: none kept)
    bases: Mapping[str, str] = field(default_factory=dict)  # stand-in base -> its manifest digest
    # real bases (upstream.py): case -> {base as named: its manifest digest, read through the cache}
    case_bases: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    workers: int = WORKERS  # cases built at a time


def run_case(ctx: Context, case: Case, variant: str) -> CaseResult:
    started = time.monotonic()
    key = executor = ""
    if case.skip:
        outcome = CaseResult(case.name, variant, "skipped", reason=case.skip, outcome="skipped")
    else:
        if ctx.memo is not None:
            key, executor = (
                ctx.memo.key(case, bases_of(ctx, case)),
                ctx.builders[variant].executor.digest or "",
            )
            kept = ctx.memo.result(executor, variant, key)
            if kept is not None:
                return replace(kept, cached=True, gating=case.gating, suite=case.suite)
        if case.should_fail:
            outcome = _must_fail(ctx, ctx.builders[variant], case, variant)
        else:
            if ctx.reference is not None and case.reference:
                _start_reference(ctx, case)
            try:
                outcome = _build(ctx, ctx.builders[variant], case, variant)
            except PipelineError as exc:
                outcome = CaseResult(case.name, variant, "failed", reason=exc.message)
            if outcome.status == "failed":
                outcome = replace(
                    outcome, reason=outcome.reason + _reference_failure(ctx, case, outcome.reason)
                )
    outcome = replace(
        outcome,
        seconds=time.monotonic() - started,
        gating=case.gating,
        suite=case.suite,
        outcome=outcome.outcome or _outcome(outcome),
    )
    if ctx.memo is not None and key and _repeatable(outcome):
        ctx.memo.keep_result(executor, variant, key, outcome)
    return outcome


def bases_of(ctx: Context, case: Case) -> dict[str, str]:
    """The bases a case's kept results are keyed by: the stand-ins' digests, or its real bases'."""
    return {**ctx.bases, **ctx.case_bases.get(case.name, {})}


def _outcome(result: CaseResult) -> CaseOutcome:
    if result.status == "passed":
        return "known-differences" if set(result.known) - set(ALWAYS) else "matched"
    if result.status == "skipped":
        return "skipped"
    return "differs" if result.differences else "kaniko-failed"


def _repeatable(result: CaseResult) -> bool:
    """Whether the same executor, case and bases would give this again (not a timeout, not podman's
    own trouble starting a container)."""
    if result.status == "skipped":
        return False
    # kaniko's 124 is a timeout, 125 podman's own trouble; buildah's 125 is its answer (kept in the memo)
    return not re.search(r"kaniko failed \(exit status 12[4-7]\)|did not finish within", result.reason)


def _must_fail(ctx: Context, builder: Kaniko, case: Case, variant: str) -> CaseResult:
    """A case the suite expects to fail: kaniko must refuse it too."""
    out = ctx.workdir / f"{case.name}-{variant}-{secrets.token_hex(3)}.tar"
    run = builder.build(case, out)
    if run.tarball is not None:
        run.tarball.unlink(missing_ok=True)
    if run.returncode == 0:
        return CaseResult(
            case.name, variant, "failed", reason=f"kaniko built it, but {case.should_fail}", outcome="differs"
        )
    last = run.tail(1)
    return CaseResult(
        case.name,
        variant,
        "passed",
        outcome="refused-as-expected",
        reason=f"kaniko refused it, as {case.should_fail.removeprefix('the ')}"
        + (f": {last[0]}" if last else ""),
    )


def _failed(
    case: Case, variant: str, reason: str, run: BuilderRun | None = None, needs: Sequence[str] = ()
) -> CaseResult:
    lines = [reason] + (["kaniko's last lines:"] + run.tail() if run is not None else [])
    return CaseResult(case.name, variant, "failed", needs=tuple(needs), reason="\n".join(lines))


def _build(ctx: Context, builder: Kaniko, case: Case, variant: str) -> CaseResult:
    out = ctx.workdir / f"{case.name}-{variant}-{secrets.token_hex(3)}.tar"
    kind_runner: Callable[[Context, Kaniko, Case, Path, Sequence[str]], tuple[BuilderRun, str]] = _KINDS[
        case.kind
    ]

    def attempt(caps: Sequence[str]) -> tuple[BuilderRun, str]:
        return kind_runner(ctx, builder, case, out, caps)

    if case.name in ctx.needs:  # learnt from an earlier variant: run with the same capabilities
        caps: tuple[str, ...] | None = ctx.needs[case.name]
        run, problem = attempt(caps or ())
    else:
        key = ctx.memo.key(case, bases_of(ctx, case)) if ctx.memo is not None else ""
        hint = ctx.memo.needs(key) if ctx.memo is not None else ()
        caps, run, problem = matrix.smallest(attempt, progress=ctx.progress, case=case.name, hint=hint)
        ctx.needs[case.name] = caps
        # kept for the next executor; a case that needs nothing extra (or that nothing helps) drops its hint
        if ctx.memo is not None and (caps or ()) != hint:
            ctx.memo.keep_needs(key, caps or ())
    needs = caps or ()
    if run.returncode != 0 or run.tarball is None:
        return _failed(case, variant, problem or f"kaniko failed (exit status {run.returncode})", run, needs)
    if problem:
        return _failed(case, variant, problem, run, needs)
    try:
        image = snapshot.read_archive(run.tarball)
    except ImageError as exc:
        return _failed(case, variant, exc.message, run, needs)
    problems = _load_check(ctx, run.tarball) + case_checks.evaluate(case.checks, image, run.log)
    if problems:
        return _failed(case, variant, "; ".join(problems[:6]), run, needs)
    run.tarball.unlink(missing_ok=True)
    differences: tuple[str, ...] = ()
    known: dict[str, int] = {}
    if ctx.reference is not None and case.reference:
        reference = _reference_image(ctx, case)
        if isinstance(reference, str):
            return CaseResult(
                case.name, variant, "failed", needs=needs, reason=reference, outcome="reference-failed"
            )
        compared = compare.compare(image, reference, ignore=case.ignore)
        known = compared.known
        if not compared.same:
            differences = tuple(d.text() for d in compared.unexpected[:MAX_DIFFERENCES])
            more = len(compared.unexpected) - len(differences)
            reason = f"{len(compared.unexpected)} difference(s) against buildah" + (
                f" ({more} not shown)" if more else ""
            )
            return CaseResult(
                case.name, variant, "failed", needs=needs, differences=differences, known=known, reason=reason
            )
    return CaseResult(case.name, variant, "passed", needs=needs, known=known)


def _load_check(ctx: Context, tarball: Path) -> list[str]:
    """The tarball kaniko wrote must load with an independent client (skopeo), as the README's Pod uses it."""
    if ctx.skopeo is None:
        return []
    result = subprocess.run(
        [ctx.skopeo, "inspect", f"docker-archive:{tarball}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        return [f"skopeo cannot load kaniko's tarball: {result.stderr.strip()[-300:]}"]
    return []


def _reference_failure(ctx: Context, case: Case, reason: str) -> str:
    """For a failed case: why buildah could not build it either ("" when it could, was not asked to, or
    ``reason`` says so already). A case that neither builder builds points at the case or the machine
    (rootless buildah, say), not at kaniko."""
    if ctx.reference is None or not case.reference:
        return ""
    reference = _reference_image(ctx, case)
    return f"\n{reference}" if isinstance(reference, str) and reference not in reason else ""


def _reference_image(ctx: Context, case: Case) -> snapshot.Snapshot | str:
    """buildah's image of the case (built once per case, whatever the variant), or why there is none."""
    return _start_reference(ctx, case).result()


def _start_reference(ctx: Context, case: Case) -> Future[snapshot.Snapshot | str]:
    """Start buildah's build of the case beside kaniko's (once per case); both mostly wait on processes."""
    if case.name not in ctx.reference_images:
        ctx.reference_images[case.name] = ctx.pool.submit(_build_reference, ctx, case)
    return ctx.reference_images[case.name]


def _build_reference(ctx: Context, case: Case) -> snapshot.Snapshot | str:
    if ctx.memo is None:
        return _build_reference_now(ctx, case)
    key = ctx.memo.key(case, bases_of(ctx, case))
    kept = ctx.memo.reference(key)
    if kept is not None:
        return kept
    made = _build_reference_now(ctx, case)
    if not isinstance(made, str) or "did not finish within" not in made:
        ctx.memo.keep_reference(key, made)
    return made


def _build_reference_now(ctx: Context, case: Case) -> snapshot.Snapshot | str:
    assert ctx.reference is not None
    out = ctx.workdir / f"{case.name}-buildah.tar"
    run = ctx.reference.build(case, out)
    if not run.ok or run.tarball is None:
        return f"buildah could not build the case (exit status {run.returncode}):\n" + "\n".join(run.tail(8))
    try:
        return snapshot.read_archive(run.tarball)
    except ImageError as exc:
        return exc.message
    finally:
        run.tarball.unlink(missing_ok=True)


# -- the kinds of case: each returns the run whose tarball and log are checked, and a problem or "" ----
def _plain(
    ctx: Context, builder: Kaniko, case: Case, out: Path, caps: Sequence[str]
) -> tuple[BuilderRun, str]:
    return builder.build(case, out, caps=caps), ""


def _reproducible(
    ctx: Context, builder: Kaniko, case: Case, out: Path, caps: Sequence[str]
) -> tuple[BuilderRun, str]:
    first = builder.build(case, out.with_suffix(".first.tar"), caps=caps)
    if first.returncode != 0:
        return first, ""
    if first.tarball is not None:
        first.tarball.unlink(missing_ok=True)
    second = builder.build(case, out, caps=caps)
    if second.returncode == 0 and (not first.digest or first.digest != second.digest):
        return second, f"two --reproducible builds gave different digests: {first.digest} and {second.digest}"
    return second, ""


def _cache(
    ctx: Context, builder: Kaniko, case: Case, out: Path, caps: Sequence[str]
) -> tuple[BuilderRun, str]:
    repo = f"{ctx.registry_host}/conformance/cache-{case.name}-{secrets.token_hex(4)}"
    extra = ["--cache=true", f"--cache-repo={repo}"]
    first = builder.build(case, out.with_suffix(".first.tar"), caps=caps, extra=extra)
    if first.returncode != 0:
        return first, ""
    if first.tarball is not None:
        first.tarball.unlink(missing_ok=True)
    return builder.build(case, out, caps=caps, extra=extra), ""


def _destinations(
    ctx: Context, builder: Kaniko, case: Case, out: Path, caps: Sequence[str]
) -> tuple[BuilderRun, str]:
    from pipeline.registry.client import Client
    from pipeline.registry.credentials import Credentials

    base = f"{ctx.registry_host}/conformance/{case.name}-{secrets.token_hex(4)}"
    refs = [Reference.parse(f"{base}:one"), Reference.parse(f"{base}:two")]
    run = builder.build(case, out, push=refs, caps=caps)
    if run.returncode != 0:
        return run, ""
    with Client(credentials=Credentials.anonymous()) as client:
        found = {str(ref): client.head_manifest(ref) for ref in refs}
    wrong = [
        f"{ref} -> {desc.digest if desc else 'nothing'}"
        for ref, desc in found.items()
        if desc is None or desc.digest != run.digest
    ]
    if wrong:
        return run, f"kaniko reported {run.digest or 'no digest'}, but the registry has " + ", ".join(wrong)
    return run, ""


_KINDS: dict[str, Callable[[Context, Kaniko, Case, Path, Sequence[str]], tuple[BuilderRun, str]]] = {
    "build": _plain,
    "reproducible": _reproducible,
    "cache": _cache,
    "destinations": _destinations,
}


def run_cases(ctx: Context, cases: Sequence[Case], variants: Sequence[str]) -> list[CaseResult]:
    """Each case with each building variant, executor first (its runs fill the capability matrix);
    within a variant, ``ctx.workers`` cases at a time. Results come back in the cases' order."""
    results: list[CaseResult] = []
    order = [v for v in BUILD_VARIANTS if v in variants and v in ctx.builders]
    todo = [(v, c) for v in order for c in cases if not c.variants or v in c.variants]
    total = len(todo)

    def one(number: int, variant: str, case: Case) -> CaseResult:
        ctx.progress.step(f"[{number}/{total}] {variant}: {case.name}")
        result = run_case(ctx, case, variant)
        kept = " (kept from an earlier run)" if result.cached else ""
        ctx.progress.info(f"{result.status} {variant} {case.name} ({result.seconds:.1f} s){kept}")
        return result

    for variant in order:
        numbered = [(n, c) for n, (v, c) in enumerate(todo, start=1) if v == variant]
        with ThreadPoolExecutor(max_workers=max(1, ctx.workers)) as pool:
            results += pool.map(lambda item, v=variant: one(item[0], v, item[1]), numbered)
    return results

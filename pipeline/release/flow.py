"""The release run: ``invoke release``, every stage in order (see the package docstring).

``resolve`` and ``check`` happen here and fix the run's context (:class:`~pipeline.release.context.Run`)
and the one :class:`~pipeline.signing.trust.Trust` (loaded once); :func:`release_flow` then calls one
function per stage, each with the values the stages before it returned: the build side
(:mod:`~pipeline.release.make`, or :func:`~pipeline.release.sign_test_result.reuse` when the images are
published and signed already), the proving side (:mod:`~pipeline.release.prove`), the test result
(:mod:`~pipeline.release.sign_test_result`), the signatures and rolling tags (:mod:`~pipeline.release.rolling`).
The run record is written by the stages, never read back within the release.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pipeline import record
from pipeline.errors import PipelineError, UsageError
from pipeline.policy import tagplan
from pipeline.progress import Progress, Silent
from pipeline.registry.reference import host_of_prefix
from pipeline.release import make, prove, rolling, sign_test_result
from pipeline.release.binding import SignatureChecks, Subject
from pipeline.release.context import Made, Options, Run, Timer
from pipeline.release.plan import (
    check_outputs,
    destination,
    dry_run_plan,
    embedded_running,
    expect_commit,
    local_variants,
    registry_of,
    write_outputs,
)
from pipeline.release.registries import Destinations
from pipeline.release.report import Report
from pipeline.release.resolution import requested, resolve
from pipeline.release.signer import Signer, choose_signing, trust_of
from pipeline.release.state import VariantState, inspect_registry
from pipeline.signing.trust import Trust
from pipeline.urls import redact

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pipeline.config import Settings

# The stages of a release that does the whole job, in order (README lists the same).
STAGES = (
    "resolve",
    "check",
    "fork",
    "build",
    "publish",
    "sign",
    "attest",
    "verify",
    "nginx-base",
    "build-image",
    "conformance",
    "smoke",
    "test-result",
    "rolling",
)


def run(settings: Settings, options: Options, *, progress: Progress | None = None) -> Report:
    """`invoke release`. Returns the report (status released, up to date or dry run); raises the failing
    stage's PipelineError after writing the report when a stage fails."""
    progress = progress or Silent()
    check_input(settings, options)
    report = Report(
        variants=list(settings.variants),
        platforms=list(settings.platforms),
        started=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    report_dir = options.report_dir or settings.cache_dir / "runs"
    timer = Timer(report, progress, options.after_stage)
    try:
        _run(settings, options, report, timer, progress)
    except PipelineError as exc:
        report.status = "failed"
        report.error = str(exc)
        report.write(report_dir)
        record.save(settings.record_file, "release", report.to_dict())
        raise
    report.write(report_dir)
    if not options.dry_run:
        record.save(settings.record_file, "release", report.to_dict())
    return report


def check_input(settings: Settings, options: Options) -> None:
    """Refuse bad input before the network (resolve) or the disk (the report) is touched."""
    from pipeline.policy.versions import check_ref
    from pipeline.stages.publish import check_prefixes

    check_ref(options.ref)
    check_prefixes(settings.prefixes)
    check_outputs(options)
    for path in options.join:
        if not path.is_file():
            raise UsageError(f"--join {path} is not a file", hint="pass each platform job's --record FILE")
    check_shards(options)
    where = options.report_dir
    if where is not None and where.exists() and not where.is_dir():
        raise UsageError(
            f"--report-dir {where} is not a directory", hint="name a directory (made if missing)"
        )
    if where is not None:
        try:
            where.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"--report-dir {where} cannot be made: {exc.strerror}", hint="name a directory you may write"
            ) from None


def _run(settings: Settings, options: Options, report: Report, timer: Timer, progress: Progress) -> None:
    from pipeline.registry.client import Client
    from pipeline.registry.credentials import Credentials

    with timer.stage("resolve") as stage:
        fork_url, report.tag = requested(settings, options.ref)  # named in the report even if it fails
        report.url = redact(fork_url)
        resolved = resolve(settings, options.ref)
        expect_commit(resolved, options.expect_commit)
        report.version, report.tag, report.commit, report.url = (
            resolved.version,
            resolved.tag,
            resolved.commit,
            redact(resolved.url),  # never the user info a fork URL may carry
        )
        prefix, embedded = destination(settings, options.dry_run, progress)
        report.prefix, report.embedded = prefix, embedded
        registry = registry_of(prefix)
        settings = local_variants(settings, options, registry, report)
        signing = choose_signing(
            settings,
            registry,
            identity_token=options.identity_token,
            certificate_identity=options.certificate_identity,
            certificate_oidc_issuer=options.certificate_oidc_issuer,
        )
        report.signature = {"identity": signing.identity, "issuer": signing.issuer, "local": signing.local}
        plans = tagplan.plan(resolved.version, prefix, settings.variants)
        others = Destinations(settings.extra_prefixes, resolved.version, settings.variants)
        others.check_signing(signing)
        report.destinations = others
        stage.detail = f"{resolved.tag} ({resolved.commit[:12]}) from {redact(resolved.url)} -> " + ", ".join(
            [prefix, *(dest.prefix for dest in others.extra)]
        )

    credentials = Credentials.from_environment(settings.env)
    signer = Signer(settings, signing, progress)  # the release's one local Sigstore instance, if any
    with Client(
        credentials=credentials,
        insecure=settings.insecure_for(host_of_prefix(prefix), *others.hosts),  # every destination
        ca_file=settings.ca_bundle,
        progress=progress,
    ) as client:
        try:
            with timer.stage("check") as stage:
                reachable = not (options.dry_run and embedded and not embedded_running(settings))
                if reachable and not options.dry_run:
                    signer.keep_trust_root()
                trust = trust_of(settings, signing) if reachable else Trust(signing.policy)
                checks = SignatureChecks(client, trust)
                subject = Subject(resolved.version, resolved.tag, resolved.commit)
                states = inspect_registry(checks, plans, subject) if reachable else {}
                complete = bool(states) and all(state.complete for state in states.values())
                if reachable and others:
                    complete = others.check(checks, subject, progress) and complete
                stage.detail = "complete" if complete else "work to do"
            if options.dry_run:
                report.status = "dry run"
                report.plan = dry_run_plan(
                    resolved, settings, plans, states, complete, options, embedded, reachable
                )
                if others:  # every registry's tags, not only the primary's
                    report.plan.update(prefix=prefix, registries=others.plan(checked=reachable))
                if options.outputs is not None:
                    write_outputs(options.outputs, report.plan)
                return
            if complete and not options.force:
                up_to_date(report, states, prefix, progress)
                return
            # signed and attested everywhere it must be, and every other registry holds the same digests:
            # test again, no build (else build: reproducible, so it pushes nothing new and attaches what is missing)
            attested = {v: s.digest for v, s in states.items() if s.attested}
            reuse = not options.force and states and len(attested) == len(states) and others.hold(attested)
            if (options.shard or options.join_shards) and not reuse:
                raise UsageError(
                    f"{resolved.tag}'s images at {prefix} are not all published, signed and attested yet, "
                    "and a conformance shard tests (or joins) only what is",
                    hint="run `invoke release --join FILE... --publish-only` (or a release) first",
                )
            context = Run(
                settings,
                options,
                report,
                timer,
                progress,
                resolved,
                prefix,
                embedded,
                signing,
                client,
                others,
                signer,
            )
            if options.shard is not None:
                shard_flow(context, trust, states)
            else:
                release_flow(context, trust, states if reuse else None)
        finally:
            signer.close()


def up_to_date(report: Report, states: Mapping[str, VariantState], prefix: str, progress: Progress) -> None:
    """What the check found complete: every image, its tags, and the trust config that verified it."""
    report.status = "up to date"
    for variant, state in states.items():
        report.images[variant] = {
            "repository": state.plan.repository,
            "digest": state.digest,
            "tags": [*state.plan.version_tags, *state.decision.move],
            "kept": dict(state.decision.keep),
            "bytes_uploaded": 0,
        }
    trusted = next(iter(states.values())).signed
    report.signature["trust_config"] = trusted.path if trusted is not None else None
    progress.step(f"{report.tag} is up to date at {prefix}: nothing to do")


def release_flow(run: Run, trust: Trust, reused: Mapping[str, VariantState] | None) -> None:
    """Every stage after ``check``, in order, each called with the values the stages before it returned
    (``reused``: what the check found published and signed, tested again without a rebuild)."""
    if reused is None:
        forked = make.fork(run)
        built = make.join(run, forked) if run.options.join else make.build(run, forked)
        published = make.publish(run, built)
        trust_config = make.sign(run, trust, published)
        make.attest(run, trust, forked, built, published)
        plans = {v: tagplan.plan_variant(run.resolved.version, v, run.prefix) for v in published}
        made = Made(published, built.layout, built.images, plans, trust_config, forked.checkout)
    else:  # the full conformance suite runs the fork's own cases: check the fork out for them
        checkout = make.fork(run).checkout if run.options.conformance == "full" else None
        made = sign_test_result.reuse(run, reused, checkout)
    run.report.signature["trust_config"] = made.trust_config
    prove.verify(run, trust, made)
    if run.options.publish_only:  # the shard jobs test it; a release with --join-shard finishes it
        run.report.status = "published"
        run.progress.step(
            f"{run.resolved.tag} is published, signed and attested: the conformance shards come next"
        )
        return
    # the shard jobs' results are checked against this release and joined before anything is built
    joined = prove.conformance(run, trust, made) if run.options.join_shards else None
    base = prove.nginx_base(run)
    pushed = prove.build_image(run, trust, made, base)
    conformance = joined if run.options.join_shards else prove.conformance(run, trust, made)
    checked = prove.smoke(run, pushed)
    sign_test_result.test_result(run, trust, made.published, checked, pushed.executor, conformance)
    rolling.signatures(run, trust, made)
    rolling.rolling(run, trust, made)


def shard_flow(run: Run, trust: Trust, published: Mapping[str, VariantState]) -> None:
    """One shard job (``--shard K/N``): the published, signed images verified, then its part of the suite,
    its result written to ``--shard-result`` for the release that joins the shards."""
    checkout = make.fork(run).checkout if run.options.conformance == "full" else None
    made = sign_test_result.reuse(run, published, checkout)
    run.report.signature["trust_config"] = made.trust_config
    prove.verify(run, trust, made)
    prove.shard(run, made)
    run.report.status = "shard tested"


def check_shards(options: Options) -> None:
    """The shard options make sense together, before anything is touched."""
    if (options.shard is None) != (options.shard_result is None):
        raise UsageError(
            "--shard and --shard-result go together", hint="a shard job runs --shard K/N --shard-result FILE"
        )
    first = "--publish-only" if options.publish_only else "--join"
    given = [
        name
        for name, on in (
            (first, bool(options.join) or options.publish_only),
            ("--shard", options.shard is not None),
            ("--join-shard", bool(options.join_shards)),
        )
        if on
    ]
    if len(given) > 1:
        raise UsageError(
            f"{' and '.join(given)} are steps of different jobs",
            hint="publish with --join FILE... --publish-only, test with --shard K/N, finish with --join-shard FILE...",
        )
    if (options.shard or options.join_shards or options.publish_only) and options.conformance == "off":
        raise UsageError(
            "--conformance off runs no conformance suite to split in shards",
            hint="use --conformance full or quick with the shard options",
        )
    if (options.shard or options.join_shards) and options.force:
        raise UsageError(
            "--force rebuilds, and a shard job tests what is published",
            hint="run the release with --force first, then the shard jobs",
        )
    for path in options.join_shards:
        if not path.is_file():
            raise UsageError(
                f"--join-shard {path} is not a file", hint="pass each shard job's --shard-result FILE"
            )
    if options.join_shards:  # every part of one split, once: refused before anything is built or pushed
        from pipeline.stages.conformance.shards import ShardResult, parts_of

        parts_of([(path, ShardResult.read(path)) for path in options.join_shards])

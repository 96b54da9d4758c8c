"""The release run: ``invoke release``, every stage in order (see the package docstring).

``resolve`` and ``check`` happen here and fix the run's context (:class:`~pipeline.release.context.Run`);
then the build side (:mod:`~pipeline.release.make`, or :func:`~pipeline.release.sign_test_result.reuse` when
the images are published and signed already) and the proving side with the rolling tags
(:mod:`~pipeline.release.prove`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pipeline import record
from pipeline.errors import PipelineError, UsageError
from pipeline.policy import tagplan
from pipeline.progress import Progress, Silent
from pipeline.registry.reference import host_of_prefix
from pipeline.release import sign_test_result
from pipeline.release.binding import Subject, Trust
from pipeline.release.context import Options, Run, Timer
from pipeline.release.make import make
from pipeline.release.plan import destination, dry_run_plan, embedded_running, local_variants, registry_of
from pipeline.release.prove import prove_and_roll
from pipeline.release.registries import Destinations
from pipeline.release.report import Report
from pipeline.release.resolution import requested, resolve
from pipeline.release.signer import choose_signing, trust_configs
from pipeline.release.state import inspect_registry
from pipeline.urls import redact

if TYPE_CHECKING:
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
            trust_config=str(settings.trust_config) if settings.trust_config else None,
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
    with Client(
        credentials=credentials,
        insecure=settings.insecure_for(host_of_prefix(prefix), *others.hosts),  # every destination
        ca_file=settings.ca_bundle,
        progress=progress,
    ) as client:
        with timer.stage("check") as stage:
            reachable = not (options.dry_run and embedded and not embedded_running(settings))
            trust = Trust(client, signing, trust_configs(settings, signing) if reachable else [])
            subject = Subject(resolved.version, resolved.tag, resolved.commit)
            states = inspect_registry(trust, plans, subject) if reachable else {}
            complete = bool(states) and all(state.complete for state in states.values())
            if reachable and others:
                complete = others.check(trust, subject, progress) and complete
            stage.detail = "complete" if complete else "work to do"
        if options.dry_run:
            report.status = "dry run"
            report.plan = dry_run_plan(
                resolved, settings, plans, states, complete, options, embedded, reachable
            )
            if others:  # every registry's tags, not only the primary's
                report.plan.update(prefix=prefix, registries=others.plan(checked=reachable))
            return
        if complete and not options.force:
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
            report.signature["trust_config"] = trusted or None
            progress.step(f"{resolved.tag} is up to date at {prefix}: nothing to do")
            return
        context = Run(
            settings, options, report, timer, progress, resolved, prefix, embedded, signing, client, others
        )
        attested = {v: s.digest for v, s in states.items() if s.attested}
        # signed and attested everywhere it must be, and every other registry holds the same digests:
        # test again, no build (else build: reproducible, so it pushes nothing new and attaches what is missing)
        if not options.force and states and len(attested) == len(states) and others.hold(attested):
            made = sign_test_result.reuse(context, states)
        else:
            made = make(context)
        prove_and_roll(context, made)

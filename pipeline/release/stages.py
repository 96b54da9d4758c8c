"""The release run: ``invoke release``, every stage in order (see the package docstring)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import pin as pinfile
from pipeline import record
from pipeline.errors import PipelineError, UsageError, VerifyError
from pipeline.progress import Progress, Silent
from pipeline.registry import tagplan
from pipeline.registry.reference import host_of_prefix, is_loopback_host
from pipeline.release import evidence, retest
from pipeline.release.identity import Signing, choose_signing, signed_by, trust_configs
from pipeline.release.registries import Destinations, repository_plan
from pipeline.release.report import Report, Stage
from pipeline.release.resolution import Resolved, requested, resolve
from pipeline.release.state import VariantState, inspect_registry
from pipeline.signing.verify import Policy
from pipeline.urls import redact

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.registry.client import Client


NGINX_REPOSITORY = "kaniko-nginx"

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

# Called after each stage that completed (a test seam: raising there is a run killed between stages).
StageHook = Callable[[str], None]


@dataclass(frozen=True)
class Options:
    """The release's options, named as the stages name them (the rest come from Settings)."""

    ref: str = ""
    identity_token: str | None = field(default=None, repr=False)
    certificate_identity: str | None = None
    certificate_oidc_issuer: str | None = None
    base_image: str | None = None
    busybox: str | None = None
    force: bool = False
    replace_version_tags: bool = False  # the documented override of the reproducibility check
    dry_run: bool = False
    report_dir: Path | None = None
    # Test seams: smoke-check this image instead of the one build-image pushed; a hook after each stage.
    smoke_image: str | None = None
    conformance: str = "full"  # full, quick or off: the conformance stage (pipeline/conformance)
    after_stage: StageHook | None = None


class _Timer:
    def __init__(self, report: Report, progress: Progress, hook: StageHook | None) -> None:
        self.report = report
        self.progress = progress
        self.hook = hook

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[Stage]:
        entry = Stage(name, 0.0, "ok")
        started = time.monotonic()
        self.progress.step(f"== {name}")
        try:
            yield entry
        except BaseException:
            entry.status = "failed"
            raise
        finally:
            entry.seconds = time.monotonic() - started
            self.report.stages.append(entry)
        if self.hook is not None:
            self.hook(name)

    def skipped(self, name: str, detail: str) -> None:
        self.progress.info(f"== {name}: skipped ({detail})")
        self.report.stages.append(Stage(name, 0.0, "skipped", detail))


def _destination(settings: Settings, dry_run: bool, progress: Progress) -> tuple[str, bool]:
    """The prefix to release under, and whether it is the embedded registry (started unless dry run)."""
    from pipeline import publish
    from pipeline.registry import local
    from pipeline.registry.credentials import Credentials

    credentials = Credentials.from_environment(settings.env)
    has_hub = credentials.lookup("docker.io") is not None
    dest = tagplan.resolve_destination(settings.prefix, settings.env, has_docker_hub_credentials=has_hub)
    if dest.prefix is not None:
        return dest.prefix, False
    if dry_run:
        running = local.status(settings.cache_dir)
        if running is None:
            return f"127.0.0.1:{local.EMBEDDED_PORT}", True
        return running.host, True
    # Said only when the release publishes (an up-to-date run publishes nothing): see _release.
    return publish.destination_prefix(settings, None, has_hub, progress, warn=False)


def _registry_of(prefix: str) -> str:
    from pipeline.registry.reference import Reference

    return Reference.parse(f"{prefix}/{tagplan.EXECUTOR_REPOSITORY}").registry


def run(settings: Settings, options: Options, *, progress: Progress | None = None) -> Report:
    """`invoke release`. Returns the report (status released, up to date or dry run); raises the failing
    stage's PipelineError after writing the report when a stage fails."""
    progress = progress or Silent()
    report = Report(
        variants=list(settings.variants),
        platforms=list(settings.platforms),
        started=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    report_dir = options.report_dir or settings.cache_dir / "runs"
    timer = _Timer(report, progress, options.after_stage)
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


def _run(settings: Settings, options: Options, report: Report, timer: _Timer, progress: Progress) -> None:
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
        prefix, embedded = _destination(settings, options.dry_run, progress)
        report.prefix, report.embedded = prefix, embedded
        registry = _registry_of(prefix)
        settings = _local_variants(settings, options, registry, report)
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
            reachable = not (options.dry_run and embedded and not _embedded_running(settings))
            configs = trust_configs(settings, signing) if reachable else []
            states = inspect_registry(client, plans, signing, configs) if reachable else {}
            complete = bool(states) and all(state.complete for state in states.values())
            if reachable and others:
                complete = others.check(client, signing, configs, progress) and complete
            stage.detail = "complete" if complete else "work to do"
        if options.dry_run:
            report.status = "dry run"
            report.plan = _plan(resolved, settings, plans, states, complete, options, embedded, reachable)
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
        _release(
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
            states,
            others,
        )


DEBUG_NOTE = (
    "debug not built: it needs the pinned busybox from Docker Hub; pass --busybox DIR|REF "
    "(or set pipeline.registry_mirror) to build it too"
)


def _local_variants(settings: Settings, options: Options, registry: str, report: Report) -> Settings:
    """For a loopback registry with no busybox source (these machines reach no Docker Hub), every
    variant but debug; elsewhere the configured variants."""

    wanted = settings.variants
    if "debug" not in wanted or len(wanted) == 1 or options.busybox or settings.registry_mirror:
        return settings
    if not is_loopback_host(registry):
        return settings
    report.notes.append(DEBUG_NOTE)
    report.variants = [v for v in wanted if v != "debug"]
    return replace(settings, variants=tuple(report.variants))


def _embedded_running(settings: Settings) -> bool:
    from pipeline.registry import local

    return local.status(settings.cache_dir) is not None


def _plan(
    resolved: Resolved,
    settings: Settings,
    plans: Mapping[str, tagplan.TagPlan],
    states: Mapping[str, VariantState],
    complete: bool,
    options: Options,
    embedded: bool,
    reachable: bool,
) -> dict[str, Any]:
    repositories = {
        variant: repository_plan(tag_plan, states.get(variant)) for variant, tag_plan in plans.items()
    }
    would_build = options.force or not complete
    plan: dict[str, Any] = {
        "version": resolved.version,
        "tag": resolved.tag,
        "commit": resolved.commit,
        "up_to_date": complete,
        "would_build": (
            {"variants": list(settings.variants), "platforms": list(settings.platforms)}
            if would_build
            else None
        ),
        "repositories": repositories,
        "test_image": f"{plans[next(iter(plans))].repository.rsplit('/', 1)[0]}/{NGINX_REPOSITORY}:{resolved.tag}",
    }
    if embedded and not reachable:
        plan["note"] = "the embedded local registry is not running: it would be started, and it holds nothing"
    return plan


def _release(
    settings: Settings,
    options: Options,
    report: Report,
    timer: _Timer,
    progress: Progress,
    resolved: Resolved,
    prefix: str,
    embedded: bool,
    signing: Signing,
    client: Client,
    states: Mapping[str, VariantState],
    others: Destinations,
) -> None:
    from pipeline import kaniko, nginxbase, publish, smoke
    from pipeline import sign as sign_stage

    signed = {v: s.digest for v, s in states.items() if s.digest and s.signed is not None}
    # signed everywhere it must be, and every other registry holds the same digests: test again, no build
    if not options.force and states and len(signed) == len(states) and others.hold(signed):
        made = retest.reuse(states, client, report, timer)
    else:
        made = _make(
            settings, options, report, timer, progress, resolved, prefix, embedded, signing, client, others
        )
    published, layout, images, plans, trust_config = made
    report.signature["trust_config"] = trust_config

    with timer.stage("verify") as stage:
        for variant, image in published.items():
            result = sign_stage.run_verify(
                settings,
                image=f"{image.repository}@{image.digest}",
                certificate_identity=signing.identity,
                certificate_oidc_issuer=signing.issuer,
                trust_config=trust_config,
                progress=progress,
            )
            if not result.verified:
                raise VerifyError(
                    f"the {variant} image {image.repository}@{image.digest} has no valid signature",
                    hint=result.explain(),
                )
        stage.detail = f"{len(published)} image(s) verified as {signing.identity}"

    mirror = settings.registry_mirror
    base_image = options.base_image
    # A loopback destination with no base and no mirror given: these machines reach no Docker Hub, so
    # kaniko gets the Debian-made nginx base from the local registry, as its docker.io mirror.
    if base_image is None and mirror is None and is_loopback_host(_registry_of(prefix)):
        with timer.stage("nginx-base") as stage:
            base = nginxbase.ensure(settings.cache_dir, progress=progress)
            pushed = nginxbase.publish(base, client, _registry_of(prefix))
            base_image = nginxbase.docker_hub_name(pushed.digest)
            mirror = _registry_of(prefix)
            report.base = {"image": base_image, "digest": pushed.digest, **nginxbase.recipe(base)}
            stage.detail = f"{base_image} through the mirror {mirror}"
    elif base_image:
        report.base = {"image": base_image}

    executor = published.get("executor")
    if executor is None:
        raise UsageError(
            "the release builds no executor variant, so the test image cannot be built",
            hint="include executor in --variants (pipeline.variants)",
        )
    with timer.stage("build-image") as stage:
        pushed_image = kaniko.run(
            settings,
            executor=f"{executor.repository}@{executor.digest}",
            destination=f"{prefix}/{NGINX_REPOSITORY}:{resolved.tag}",
            registry_mirror=mirror or "",
            base_image=base_image or "",
            verify=True,
            certificate_identity=signing.identity,
            certificate_oidc_issuer=signing.issuer,
            trust_config=trust_config or "",
            progress=progress,
        )
        record.save(settings.record_file, "build-image", pushed_image.to_dict())
        report.image = pushed_image.image
        stage.detail = pushed_image.image

    if options.conformance == "off":
        timer.skipped("conformance", "--conformance off")
    else:
        from pipeline.conformance import stage as conformance

        with timer.stage("conformance") as stage:
            refs = {variant: f"{image.repository}@{image.digest}" for variant, image in published.items()}
            report.conformance = conformance.for_release(
                settings,
                refs,
                mode=options.conformance,
                fork_checkout=conformance.recorded_checkout(settings, tag=resolved.tag),
                progress=progress,
            )
            stage.detail = report.conformance.summary()
            if not report.conformance.ok:
                stage.status = "failed"  # raised after its FAILED test result is attached (test-result)

    with timer.stage("smoke") as stage:
        checked = smoke.run(settings, image=options.smoke_image or pushed_image.image, progress=progress)
        record.save(settings.record_file, "smoke", checked.to_dict())
        report.smoke = checked.to_dict()
        stage.detail = "passed" if checked.ok else "FAILED: " + ", ".join(c.name for c in checked.failed())
        if not checked.ok:
            stage.status = "failed"

    retest.test_result(
        settings,
        signing,
        client,
        report,
        timer,
        progress,
        published,
        checked,
        pushed_image.executor,
        report.conformance,
    )

    if others:  # every other registry gets the same bundles: signatures, attestations, test results
        with timer.stage("signatures") as stage:
            others.copy_signatures(client, published, progress)
            others.raise_if_failed(prefix)
            others.verify(settings, signing, trust_config, progress)
            others.raise_if_failed(prefix)
            stage.detail = "the same bundles attached and verified in " + ", ".join(
                d.prefix for d in others.extra
            )

    with timer.stage("rolling") as stage:
        moved: list[str] = []
        configs = trust_configs(settings, signing)
        for image in published.values():  # never to a digest whose latest result is not PASSED
            evidence.require_passed(client, image.repository, image.digest, signing, configs)
        for variant, image in published.items():
            decision = publish.move_rolling(
                client, layout, images[variant], plans[variant], progress=progress
            )
            image.tags.extend(decision.move)
            image.kept = dict(decision.keep)
            image.pending_rolling = []
            report.images[variant]["tags"] = list(image.tags)
            report.images[variant]["kept"] = dict(decision.keep)
            moved += [f"{image.repository}:{tag}" for tag in decision.move]
        _save_publish(settings, published, prefix, embedded)
        moved += others.move_rolling(client, layout, images, progress)
        stage.detail = ", ".join(moved) or "none moved"
    report.status = "released"


def _make(
    settings: Settings,
    options: Options,
    report: Report,
    timer: _Timer,
    progress: Progress,
    resolved: Resolved,
    prefix: str,
    embedded: bool,
    signing: Signing,
    client: Client,
    others: Destinations,
) -> retest.Made:
    """fork, build, publish (to every registry) and sign (skipped when every image is validly signed
    already)."""
    from pipeline import build as build_stage
    from pipeline import fork as fork_stage
    from pipeline import publish
    from pipeline import sign as sign_stage

    with timer.stage("fork") as stage:
        pin = pinfile.load(settings.pin_file)
        checkout = fork_stage.checkout(
            ref=resolved.tag,
            pin=pin,
            patches_dir=settings.patches_dir,
            cache_dir=settings.cache_dir,
            url=resolved.url,
            prerelease=settings.prerelease,
            progress=progress,
        )
        record.save(settings.record_file, "fork", checkout.to_dict())
        stage.detail = f"{checkout.tag} ({checkout.commit[:12]}) at {checkout.path}"

    build_started = time.time()
    with timer.stage("build") as stage:
        built = build_stage.build(
            checkout,
            out=settings.build_layout,
            cache_dir=settings.cache_dir,
            platforms=settings.platforms,
            variants=settings.variants,
            go=settings.go,
            busybox=options.busybox,
            registry_mirror=settings.registry_mirror,
            insecure=settings.insecure,
            pinned_url=pin.url,
            progress=progress,
        )
        record.save(settings.record_file, "build", built.to_dict())
        report.go = dict(built.go)
        stage.detail = ", ".join(
            f"{name} {image['digest']}" for name, image in built.to_dict()["images"].items()
        )

    with timer.stage("publish") as stage:
        if embedded:
            progress.warn(publish.embedded_warning(tagplan.EMBEDDED_REASON, prefix))
        layout, images = publish.images_from_record(built.to_dict())
        published = publish.publish_images(
            client,
            layout,
            images,
            prefix,
            version=resolved.version,
            rolling=False,
            replace_version_tags=options.replace_version_tags,
            progress=progress,
        )
        _save_publish(settings, published, prefix, embedded)
        for variant, image in published.items():
            report.images[variant] = {
                **image.to_dict(),
                "bytes_uploaded": image.bytes_uploaded,
                "kept": {},
            }
        stage.detail = f"{report.bytes_uploaded} bytes uploaded"
        others.publish(client, layout, images, progress)
        others.raise_if_failed(prefix)

    plans = {variant: tagplan.plan_variant(resolved.version, variant, prefix) for variant in published}
    configs = trust_configs(settings, signing)
    done = {
        variant: signed_by(client, image.repository, image.digest, signing, configs)
        for variant, image in published.items()
    }
    if all(found is not None for found in done.values()):
        trust_config = next(iter(done.values())) or None
        timer.skipped("sign", "every image already has a valid signature from " + signing.identity)
    else:
        with timer.stage("sign") as stage:
            signed = sign_stage.run_sign(
                settings,
                identity_token=signing.identity_token,
                trust_config=signing.trust_config,
                local=signing.local,
                expected=Policy(signing.identity, signing.issuer),
                progress=progress,
            )
            record.save(settings.record_file, "sign", signed)
            trust_config = signed.get("trust_config")
            stage.detail = f"{len(signed['signatures'])} signature(s) as {signed['identity']}"
            if signed["identity"] != signing.identity or signed["issuer"] != signing.issuer:
                raise VerifyError(
                    f"signed as {signed['identity']} (issuer {signed['issuer']}), but verification "
                    f"expects {signing.identity} (issuer {signing.issuer})",
                    hint="make --certificate-identity and --certificate-oidc-issuer match the signing "
                    "identity; rolling tags were not moved",
                )
    with timer.stage("attest") as stage:
        build_seconds = next(s.seconds for s in report.stages if s.name == "build")
        made = evidence.attest_build(
            settings,
            signing,
            client,
            evidence.build_facts(checkout, built.inputs, pin.url),
            {v: (i.repository, images[v]) for v, i in published.items()},
            layout,
            (build_started, build_started + build_seconds),
            progress,
        )
        report.attestations += [item.to_dict() for item in made]
        stage.detail = f"{len(made)} SBOM and provenance attestation(s)" if made else "already attached"
    return published, layout, images, plans, trust_config


def _save_publish(settings: Settings, published: Mapping[str, Any], prefix: str, embedded: bool) -> None:
    """The publish record, as `invoke publish` writes it (sign, build-image and render read it)."""
    record.save(
        settings.record_file,
        "publish",
        {
            "images": {variant: image.to_dict() for variant, image in published.items()},
            "prefix": prefix,
            "embedded": embedded,
            "pending_rolling": {v: i.pending_rolling for v, i in published.items() if i.pending_rolling},
            "bytes_uploaded": {v: i.bytes_uploaded for v, i in published.items()},
        },
    )

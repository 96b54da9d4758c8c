"""The proving side of a release, then the rolling tags: verify every signature, build the nginx test
image with the published executor (kaniko in podman), run the conformance suite and the smoke checks,
attach the signed test result, copy every bundle to the other registries, and only then move the
rolling tags (never to a digest whose latest test result is not PASSED)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.errors import UsageError, VerifyError
from pipeline.registry.reference import is_loopback_host
from pipeline.release import attestations, sign_test_result
from pipeline.release.binding import Trust, rolling_holds
from pipeline.release.context import Made, Run
from pipeline.release.plan import NGINX_REPOSITORY, registry_of
from pipeline.release.signer import trust_configs

if TYPE_CHECKING:
    from pipeline.stages.conformance.regressions import Baseline


def _previous_release(run: Run, made: Made) -> Baseline | None:
    """The previous released executor's verified test result: what a regression is measured against."""
    from pipeline.signing.verify import Policy
    from pipeline.stages.conformance import regressions

    image = made.published.get("executor") or next(iter(made.published.values()), None)
    if image is None:
        return None
    configs = [config for _, config in trust_configs(run.settings, run.signing)]
    policy = Policy(run.signing.identity, run.signing.issuer)
    return regressions.lookup(run.client, image.repository, run.resolved.tag, policy, configs, run.progress)


def prove_and_roll(run: Run, made: Made) -> None:
    """verify, nginx-base, build-image, conformance, smoke, test-result, signatures, rolling."""
    from pipeline.services import nginxbase
    from pipeline.stages import build_image, publish, smoke, verify_images

    run.report.signature["trust_config"] = made.trust_config

    with run.timer.stage("verify") as stage:
        for variant, image in made.published.items():
            result = verify_images.run_verify(
                run.settings,
                image=f"{image.repository}@{image.digest}",
                certificate_identity=run.signing.identity,
                certificate_oidc_issuer=run.signing.issuer,
                trust_config=made.trust_config,
                progress=run.progress,
            )
            if not result.verified:
                raise VerifyError(
                    f"the {variant} image {image.repository}@{image.digest} has no valid signature",
                    hint=result.explain(),
                )
        stage.detail = f"{len(made.published)} image(s) verified as {run.signing.identity}"

    mirror = run.settings.registry_mirror
    base_image = run.options.base_image
    # A loopback destination with no base and no mirror given: these machines reach no Docker Hub, so
    # kaniko gets the Debian-made nginx base from the local registry, as its docker.io mirror.
    if base_image is None and mirror is None and is_loopback_host(registry_of(run.prefix)):
        with run.timer.stage("nginx-base") as stage:
            base = nginxbase.ensure(run.settings.cache_dir, progress=run.progress)
            pushed = nginxbase.publish(base, run.client, registry_of(run.prefix))
            base_image = nginxbase.docker_hub_name(pushed.digest)
            mirror = registry_of(run.prefix)
            run.report.base = {"image": base_image, "digest": pushed.digest, **nginxbase.recipe(base)}
            stage.detail = f"{base_image} through the mirror {mirror}"
    elif base_image:
        run.report.base = {"image": base_image}

    executor = made.published.get("executor")
    if executor is None:
        raise UsageError(
            "the release builds no executor variant, so the test image cannot be built",
            hint="include executor in --variants (pipeline.variants)",
        )
    with run.timer.stage("build-image") as stage:
        pushed_image = build_image.run(
            run.settings,
            executor=f"{executor.repository}@{executor.digest}",
            destination=f"{run.prefix}/{NGINX_REPOSITORY}:{run.resolved.tag}",
            registry_mirror=mirror or "",
            base_image=base_image or "",
            verify=True,
            certificate_identity=run.signing.identity,
            certificate_oidc_issuer=run.signing.issuer,
            trust_config=made.trust_config or "",
            progress=run.progress,
        )
        build_image.save_record(run.settings.record_file, pushed_image)
        run.report.image = pushed_image.image
        stage.detail = pushed_image.image

    if run.options.conformance == "off":
        run.timer.skipped("conformance", "--conformance off")
    else:
        from pipeline.stages.conformance.stage import for_release, recorded_checkout
        from pipeline.stages.conformance.upstream import BaseChoice

        with run.timer.stage("conformance") as stage:
            refs = {
                variant: f"{image.repository}@{image.digest}" for variant, image in made.published.items()
            }
            run.report.conformance = for_release(
                run.settings,
                refs,
                mode=run.options.conformance,
                fork_checkout=recorded_checkout(run.settings, tag=run.resolved.tag),
                progress=run.progress,
                suite_names=run.options.conformance_suites,
                previous=_previous_release(run, made),
                base_choice=BaseChoice(run.options.conformance_bases),
            )
            stage.detail = run.report.conformance.summary()
            if not run.report.conformance.ok:
                stage.status = "failed"  # raised after its FAILED test result is attached (test-result)

    with run.timer.stage("smoke") as stage:
        checked = smoke.run(
            run.settings, image=run.options.smoke_image or pushed_image.image, progress=run.progress
        )
        smoke.save_record(run.settings.record_file, checked)
        run.report.smoke = checked.to_dict()
        stage.detail = "passed" if checked.ok else "FAILED: " + ", ".join(c.name for c in checked.failed())
        if not checked.ok:
            stage.status = "failed"

    sign_test_result.test_result(run, made.published, checked, pushed_image.executor, run.report.conformance)

    if run.others:  # every other registry gets the same bundles: signatures, attestations, test results
        with run.timer.stage("signatures") as stage:
            trust = Trust(run.client, run.signing, trust_configs(run.settings, run.signing))
            run.others.copy_signatures(trust, made.published, run.progress)
            run.others.raise_if_failed(run.prefix)
            run.others.verify(run.settings, run.signing, made.trust_config, run.progress)
            run.others.raise_if_failed(run.prefix)
            stage.detail = "the same bundles attached and verified in " + ", ".join(
                d.prefix for d in run.others.extra
            )

    with run.timer.stage("rolling") as stage:
        moved: list[str] = []
        trust = Trust(run.client, run.signing, trust_configs(run.settings, run.signing))
        for image in made.published.values():  # never to a digest whose latest result is not PASSED
            attestations.require_passed(trust, image.repository, image.digest, run.subject)
        for variant, image in made.published.items():
            held = rolling_holds(trust, made.plans[variant], image.digest)  # only what the identity signed
            decision = publish.move_rolling(
                run.client,
                made.layout,
                made.images[variant],
                made.plans[variant],
                held={tag: version for tag, (_, version) in held.items()},
                progress=run.progress,
            )
            image.tags.extend(decision.move)
            image.kept = dict(decision.keep)
            image.pending_rolling = []
            run.report.images[variant]["tags"] = list(image.tags)
            run.report.images[variant]["kept"] = dict(decision.keep)
            moved += [f"{image.repository}:{tag}" for tag in decision.move]
        publish.record_published(run.settings.record_file, made.published, run.prefix, run.embedded)
        moved += run.others.move_rolling(trust, made.layout, made.images, run.progress)
        stage.detail = ", ".join(moved) or "none moved"
    run.report.status = "released"

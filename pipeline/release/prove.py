"""The proving side of a release, then the rolling tags: verify every signature, build the nginx test
image with the published executor (kaniko in podman), run the conformance suite and the smoke checks,
attach the signed test result, copy every bundle to the other registries, and only then move the
rolling tags (never to a digest whose latest test result is not PASSED)."""

from __future__ import annotations

from pipeline.errors import UsageError, VerifyError
from pipeline.registry.reference import is_loopback_host
from pipeline.release import attestations as evidence
from pipeline.release import retest
from pipeline.release.context import Made, Run
from pipeline.release.plan import NGINX_REPOSITORY, registry_of
from pipeline.release.signer import trust_configs


def prove_and_roll(run: Run, made: Made) -> None:
    """verify, nginx-base, build-image, conformance, smoke, test-result, signatures, rolling."""
    from pipeline.services import nginxbase
    from pipeline.stages import build_image, publish, smoke
    from pipeline.stages import verify as verify_stage

    settings, options, report, timer, progress = (
        run.settings,
        run.options,
        run.report,
        run.timer,
        run.progress,
    )
    resolved, prefix, embedded, signing, client = (
        run.resolved,
        run.prefix,
        run.embedded,
        run.signing,
        run.client,
    )
    published, layout, images, plans, trust_config = (
        made.published,
        made.layout,
        made.images,
        made.plans,
        made.trust_config,
    )
    report.signature["trust_config"] = trust_config

    with timer.stage("verify") as stage:
        for variant, image in published.items():
            result = verify_stage.run_verify(
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
    if base_image is None and mirror is None and is_loopback_host(registry_of(prefix)):
        with timer.stage("nginx-base") as stage:
            base = nginxbase.ensure(settings.cache_dir, progress=progress)
            pushed = nginxbase.publish(base, client, registry_of(prefix))
            base_image = nginxbase.docker_hub_name(pushed.digest)
            mirror = registry_of(prefix)
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
        pushed_image = build_image.run(
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
        build_image.save_record(settings.record_file, pushed_image)
        report.image = pushed_image.image
        stage.detail = pushed_image.image

    if options.conformance == "off":
        timer.skipped("conformance", "--conformance off")
    else:
        from pipeline.stages.conformance import stage as conformance

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
        smoke.save_record(settings.record_file, checked)
        report.smoke = checked.to_dict()
        stage.detail = "passed" if checked.ok else "FAILED: " + ", ".join(c.name for c in checked.failed())
        if not checked.ok:
            stage.status = "failed"

    retest.test_result(run, published, checked, pushed_image.executor, report.conformance)

    if run.others:  # every other registry gets the same bundles: signatures, attestations, test results
        with timer.stage("signatures") as stage:
            run.others.copy_signatures(client, published, progress)
            run.others.raise_if_failed(prefix)
            run.others.verify(settings, signing, trust_config, progress)
            run.others.raise_if_failed(prefix)
            stage.detail = "the same bundles attached and verified in " + ", ".join(
                d.prefix for d in run.others.extra
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
        publish.record_published(settings.record_file, published, prefix, embedded)
        moved += run.others.move_rolling(client, layout, images, progress)
        stage.detail = ", ".join(moved) or "none moved"
    report.status = "released"

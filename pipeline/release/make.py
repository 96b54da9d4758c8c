"""The build side of a release: fork, build, publish (to every registry), sign (skipped when every
image is validly signed already) and attest (SBOMs and provenance)."""

from __future__ import annotations

import time

from pipeline.errors import VerifyError
from pipeline.policy import tagplan
from pipeline.release import attestations as evidence
from pipeline.release.context import Made, Run
from pipeline.release.signer import signed_by, trust_configs
from pipeline.signing.verify import Policy
from pipeline.source import pin as pinfile


def make(run: Run) -> Made:
    """fork, build, publish, sign and attest; the published images and what the later stages need."""
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
    from pipeline.stages import build as build_stage
    from pipeline.stages import fork as fork_stage
    from pipeline.stages import publish
    from pipeline.stages import sign as sign_stage

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
        fork_stage.save_record(settings.record_file, checkout)
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
        build_stage.save_record(settings.record_file, built)
        report.go = dict(built.go)
        stage.detail = ", ".join(
            f"{name} {image['digest']}" for name, image in built.to_dict()["images"].items()
        )

    with timer.stage("publish") as stage:
        if embedded:
            progress.warn(publish.embedded_warning(tagplan.EMBEDDED_REASON, prefix))
        layout, images = build_stage.layout_images(built.to_dict())
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
        publish.record_published(settings.record_file, published, prefix, embedded)
        for variant, image in published.items():
            report.images[variant] = {
                **image.to_dict(),
                "bytes_uploaded": image.bytes_uploaded,
                "kept": {},
            }
        stage.detail = f"{report.bytes_uploaded} bytes uploaded"
        run.others.publish(client, layout, images, progress)
        run.others.raise_if_failed(prefix)

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
            sign_stage.save_record(settings.record_file, signed)
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
    return Made(published, layout, images, plans, trust_config)

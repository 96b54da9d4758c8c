"""The build side of a release: fork, build, publish (to every registry), sign (skipped when every
image is validly signed already) and attest (SBOMs and provenance)."""

from __future__ import annotations

import time

from pipeline.errors import VerifyError
from pipeline.policy import tagplan
from pipeline.release import attestations
from pipeline.release.context import Made, Run
from pipeline.release.signer import signed_by, trust_configs
from pipeline.signing.verify import Policy
from pipeline.source import pinfile


def make(run: Run) -> Made:
    """fork, build, publish, sign and attest; the published images and what the later stages need."""
    from pipeline.stages import build, fork, publish, sign

    with run.timer.stage("fork") as stage:
        pin = pinfile.load(run.settings.pin_file)
        checkout = fork.checkout(
            ref=run.resolved.tag,
            pin=pin,
            patches_dir=run.settings.patches_dir,
            cache_dir=run.settings.cache_dir,
            url=run.resolved.url,
            prerelease=run.settings.prerelease,
            progress=run.progress,
        )
        fork.save_record(run.settings.record_file, checkout)
        stage.detail = f"{checkout.tag} ({checkout.commit[:12]}) at {checkout.path}"

    build_started = time.time()
    with run.timer.stage("build") as stage:
        built = build.build(
            checkout,
            out=run.settings.build_layout,
            cache_dir=run.settings.cache_dir,
            platforms=run.settings.platforms,
            variants=run.settings.variants,
            go=run.settings.go,
            busybox=run.options.busybox,
            registry_mirror=run.settings.registry_mirror,
            insecure=run.settings.insecure,
            pinned_url=pin.url,
            progress=run.progress,
        )
        build.save_record(run.settings.record_file, built)
        run.report.go = dict(built.go)
        stage.detail = ", ".join(
            f"{name} {image['digest']}" for name, image in built.to_dict()["images"].items()
        )

    with run.timer.stage("publish") as stage:
        if run.embedded:
            run.progress.warn(publish.embedded_warning(tagplan.EMBEDDED_REASON, run.prefix))
        layout, images = build.layout_images(built.to_dict())
        published = publish.publish_images(
            run.client,
            layout,
            images,
            run.prefix,
            version=run.resolved.version,
            rolling=False,
            replace_version_tags=run.options.replace_version_tags,
            progress=run.progress,
        )
        publish.record_published(run.settings.record_file, published, run.prefix, run.embedded)
        for variant, image in published.items():
            run.report.images[variant] = {
                **image.to_dict(),
                "bytes_uploaded": image.bytes_uploaded,
                "kept": {},
            }
        stage.detail = f"{run.report.bytes_uploaded} bytes uploaded"
        run.others.publish(run.client, layout, images, run.progress)
        run.others.raise_if_failed(run.prefix)

    plans = {
        variant: tagplan.plan_variant(run.resolved.version, variant, run.prefix) for variant in published
    }
    configs = trust_configs(run.settings, run.signing)
    done = {
        variant: signed_by(run.client, image.repository, image.digest, run.signing, configs)
        for variant, image in published.items()
    }
    if all(found is not None for found in done.values()):
        trust_config = next(iter(done.values())) or None
        run.timer.skipped("sign", "every image already has a valid signature from " + run.signing.identity)
    else:
        with run.timer.stage("sign") as stage:
            signed = sign.run_sign(
                run.settings,
                identity_token=run.signing.identity_token,
                trust_config=run.signing.trust_config,
                local=run.signing.local,
                expected=Policy(run.signing.identity, run.signing.issuer),
                progress=run.progress,
            )
            sign.save_record(run.settings.record_file, signed)
            trust_config = signed.get("trust_config")
            stage.detail = f"{len(signed['signatures'])} signature(s) as {signed['identity']}"
            if signed["identity"] != run.signing.identity or signed["issuer"] != run.signing.issuer:
                raise VerifyError(
                    f"signed as {signed['identity']} (issuer {signed['issuer']}), but verification "
                    f"expects {run.signing.identity} (issuer {run.signing.issuer})",
                    hint="make --certificate-identity and --certificate-oidc-issuer match the signing "
                    "identity; rolling tags were not moved",
                )
    with run.timer.stage("attest") as stage:
        build_seconds = next(s.seconds for s in run.report.stages if s.name == "build")
        made = attestations.attest_build(
            attestations.Attester.of(run),
            attestations.build_facts(checkout, built.inputs, pin.url),
            {v: (i.repository, images[v]) for v, i in published.items()},
            layout,
            (build_started, build_started + build_seconds),
        )
        run.report.attestations += [item.to_dict() for item in made]
        stage.detail = f"{len(made)} SBOM and provenance attestation(s)" if made else "already attached"
    return Made(published, layout, images, plans, trust_config)

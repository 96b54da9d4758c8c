"""The build side of a release, one function per stage: fork, build (or join: the images platform jobs
pushed), publish (to every registry), sign
(skipped when every image is validly signed already) and attest (SBOMs and provenance).

Each takes the values the stages before it returned and returns what a later stage needs (attest: nothing);
each writes its run-record entry (for a task that runs alone later) and reads none. :func:`pipeline.release.flow.release_flow` calls them
in order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.policy import tagplan
from pipeline.registry.reference import Reference
from pipeline.release import attestations
from pipeline.release.context import Run
from pipeline.release.signer import signed_by

if TYPE_CHECKING:
    from pipeline.oci.descriptor import Descriptor
    from pipeline.oci.layout import Layout
    from pipeline.signing.trust import Trust
    from pipeline.source.checkout import Checkout
    from pipeline.stages.build import BuildResult
    from pipeline.stages.publish import PublishedImage


@dataclass(frozen=True)
class Forked:
    """The fork stage's value: the checkout, and the URL the pin file names (the image's source)."""

    checkout: Checkout
    pinned_url: str


@dataclass(frozen=True)
class Built:
    """The build stage's value: the result, the layout it wrote and when the build ran (the provenance's
    start and end)."""

    result: BuildResult
    layout: Layout
    window: tuple[float, float]

    @property
    def images(self) -> dict[str, Descriptor]:
        return self.result.descriptors


def fork(run: Run) -> Forked:
    """Clone (once, cached) or fetch the fork, check out the release's tag, apply the patches."""
    from pipeline.source import pinfile
    from pipeline.stages import fork

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
    return Forked(checkout, pin.url)


def build(run: Run, forked: Forked) -> Built:
    """Cross-compile the checkout and assemble every variant into the build's OCI layout."""
    from pipeline.stages import build

    started = time.time()
    with run.timer.stage("build") as stage:
        result = build.build(
            forked.checkout,
            build.BuildSpec(
                out=run.settings.build_layout,
                cache_dir=run.settings.cache_dir,
                platforms=run.settings.platforms,
                variants=run.settings.variants,
                go=run.settings.go,
                busybox=run.options.busybox,
                registry_mirror=run.settings.registry_mirror,
                insecure=run.settings.insecure,
                pinned_url=forked.pinned_url,
            ),
            progress=run.progress,
        )
        stage.detail = _recorded(run, result)
    assert result.written is not None  # build.build hands back the layout it wrote
    return Built(result, result.written, (started, time.time()))


def join(run: Run, forked: Forked) -> Built:
    """The fanned-out build: check the platform jobs' records against this release, then join the images
    they pushed into each variant's index, in a new layout (pipeline/stages/fanout.py)."""
    from pipeline.errors import UsageError
    from pipeline.stages import build, fanout

    with run.timer.stage("join") as stage:
        records = [(path, fanout.PlatformRecord.read(path)) for path in run.options.join]
        fanout.check(
            records,
            version=run.resolved.version,
            commit=forked.checkout.commit,
            platforms=run.settings.platforms,
        )
        variants = records[0][1].variants
        if sorted(variants) != sorted(run.settings.variants):
            raise UsageError(
                f"the records hold {', '.join(variants)}, the release wants {', '.join(run.settings.variants)}",
                hint="build the same --variants in every platform job as the join releases",
            )
        joined = fanout.join(
            run.client,
            [record for _, record in records],
            run.settings.platforms,
            run.settings.build_layout,
            run.progress,
        )
        result = build.BuildResult(
            layout=joined.layout.root,
            version=run.resolved.version,
            images=joined.images,
            inputs=joined.inputs,
            go=joined.go,
            written=joined.layout,
            window=joined.window,
        )
        stage.detail = _recorded(run, result)
    return Built(result, joined.layout, joined.window)


def _recorded(run: Run, result: BuildResult) -> str:
    """The build record and the report's toolchain, as after either way of building; the stage's detail."""
    from pipeline.stages import build

    build.save_record(run.settings.record_file, result)
    run.report.go = dict(result.go)
    return ", ".join(f"{name} {image.index.digest}" for name, image in result.images.items())


def publish(run: Run, built: Built) -> dict[str, PublishedImage]:
    """Push every variant by digest with its version tags only, to the first registry and every other."""
    from pipeline.stages import publish

    with run.timer.stage("publish") as stage:
        if run.embedded:
            run.progress.warn(publish.embedded_warning(tagplan.EMBEDDED_REASON, run.prefix))
        published = publish.publish_images(
            run.client,
            built.layout,
            built.images,
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
        run.others.publish(run.client, built.layout, built.images, run.progress)
        run.others.raise_if_failed(run.prefix)
    return published


def sign(run: Run, trust: Trust, published: dict[str, PublishedImage]) -> str | None:
    """Sign each published index as the release's identity, unless each is validly signed already.
    Returns the path of the trust config its signatures verify under (None: the public instance)."""
    from pipeline.stages import sign

    done = {v: signed_by(run.client, i.repository, i.digest, trust) for v, i in published.items()}
    if all(found is not None for found in done.values()):
        run.timer.skipped("sign", "every image already has a valid signature from " + trust.policy.identity)
        return next(found.path for found in done.values() if found is not None)
    with run.timer.stage("sign") as stage:
        targets = []
        for variant, image in published.items():
            ref = Reference.parse(image.repository)
            targets.append(sign.Target(variant, Reference(ref.registry, ref.repository), image.digest))
        config, token = run.signer.session(trust, [target.repository.registry for target in targets])
        # expected: the token's and the certificate's identity are checked before anything is attached
        signed = sign.sign(
            targets,
            client=run.client,
            config=config,
            token=token,
            expected=trust.policy,
            progress=run.progress,
        )
        sign.save_record(run.settings.record_file, {**signed.to_dict(), "trust_config": trust.root})
        stage.detail = f"{len(signed.signed)} signature(s) as {signed.identity}"
    return trust.root


def attest(
    run: Run, trust: Trust, forked: Forked, built: Built, published: dict[str, PublishedImage]
) -> None:
    """Attach SLSA provenance to each variant's index and an SBOM to each platform image (what is not
    validly attached yet)."""
    with run.timer.stage("attest") as stage:
        made = attestations.attest_build(
            attestations.Attester.of(run, trust),
            attestations.build_facts(forked.checkout, built.result.inputs, forked.pinned_url),
            {v: (i.repository, built.images[v]) for v, i in published.items()},
            built.layout,
            built.window,
        )
        run.report.attestations += [item.to_dict() for item in made]
        stage.detail = f"{len(made)} SBOM and provenance attestation(s)" if made else "already attached"

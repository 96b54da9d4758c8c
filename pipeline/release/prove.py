"""The proving side of a release, one function per stage: verify every signature, make the nginx base
(loopback registries), build the nginx test image with the published executor (kaniko in podman), run the
conformance suite and the smoke checks. The signed test result follows
(:mod:`pipeline.release.sign_test_result`), then the other registries' signatures and the rolling tags
(:mod:`pipeline.release.rolling`). Each function takes values and returns what a later stage needs (verify:
nothing, it raises); none reads the run record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.errors import UsageError, VerifyError
from pipeline.registry.reference import Reference, is_loopback_host
from pipeline.release.context import Made, Run
from pipeline.release.plan import NGINX_REPOSITORY, registry_of

if TYPE_CHECKING:
    from pipeline.signing.trust import Trust
    from pipeline.stages.build_image import BuiltImage
    from pipeline.stages.conformance.regressions import Baseline
    from pipeline.stages.conformance.result import ConformanceResult
    from pipeline.stages.conformance.shards import ReleaseUnderTest
    from pipeline.stages.conformance.stage import Plan
    from pipeline.stages.smoke import SmokeResult


@dataclass(frozen=True)
class KanikoBase:
    """What kaniko builds the nginx test image on: the base image and the docker.io mirror (None: the
    Dockerfile's own base, Docker Hub itself)."""

    image: str | None
    mirror: str | None


def verify(run: Run, trust: Trust, made: Made) -> None:
    """Each published index's signature, under the trust config that verified it."""
    from pipeline.stages import verify_images

    config = trust.config_at(made.trust_config)
    with run.timer.stage("verify") as stage:
        for variant, image in made.published.items():
            result = verify_images.verify(
                Reference.parse(f"{image.repository}@{image.digest}"),
                client=run.client,
                policy=trust.policy,
                config=config,
                progress=run.progress,
            )
            if not result.verified:
                raise VerifyError(
                    f"the {variant} image {image.repository}@{image.digest} has no valid signature",
                    hint=result.explain(),
                )
        stage.detail = f"{len(made.published)} image(s) verified as {trust.policy.identity}"


def nginx_base(run: Run) -> KanikoBase:
    """A loopback destination with no base and no mirror given: these machines reach no Docker Hub, so
    kaniko gets the Debian-made nginx base from the local registry, as its docker.io mirror."""
    from pipeline.services import nginxbase

    base = KanikoBase(run.options.base_image, run.settings.registry_mirror)
    if base.image is not None or base.mirror is not None or not is_loopback_host(registry_of(run.prefix)):
        if base.image:
            run.report.base = {"image": base.image}
        return base
    with run.timer.stage("nginx-base") as stage:
        made = nginxbase.ensure(run.settings.cache_dir, progress=run.progress)
        pushed = nginxbase.publish(made, run.client, registry_of(run.prefix))
        base = KanikoBase(nginxbase.docker_hub_name(pushed.digest), registry_of(run.prefix))
        run.report.base = {"image": base.image, "digest": pushed.digest, **nginxbase.recipe(made)}
        stage.detail = f"{base.image} through the mirror {base.mirror}"
    return base


def build_image(run: Run, trust: Trust, made: Made, base: KanikoBase) -> BuiltImage:
    """The nginx test image, built by the published executor (verified first) and pushed."""
    from pipeline.config import PROJECT_ROOT
    from pipeline.registry.credentials import Credentials
    from pipeline.services.kaniko import BuildRequest
    from pipeline.services.podman import Podman
    from pipeline.stages import build_image

    executor = made.published.get("executor")
    if executor is None:
        raise UsageError(
            "the release builds no executor variant, so the test image cannot be built",
            hint="include executor in --variants (pipeline.variants)",
        )
    with run.timer.stage("build-image") as stage:
        request = BuildRequest(
            executor=Reference.parse(f"{executor.repository}@{executor.digest}"),
            destination=Reference.parse(f"{run.prefix}/{NGINX_REPOSITORY}:{run.resolved.tag}"),
            context=PROJECT_ROOT,
            registry_mirror=base.mirror,
            base_image=base.image,
        )
        verifier = build_image.executor_verifier(
            run.client, trust.policy, trust.config_at(made.trust_config), run.progress
        )
        pushed = build_image.build_image(
            Podman(run.settings.cache_dir, progress=run.progress),
            request,
            credentials=Credentials.from_environment(run.settings.env),
            verify=verifier,
            progress=run.progress,
        )
        build_image.save_record(run.settings.record_file, pushed)
        run.report.image = pushed.image
        stage.detail = pushed.image
    return pushed


def conformance(run: Run, trust: Trust, made: Made) -> ConformanceResult | None:
    """Every published variant on the conformance suite, compared with buildah (None: --conformance off),
    or the shard jobs' results joined (--join-shard). A failure is raised after its FAILED test result is
    attached (test-result)."""
    if run.options.conformance == "off":
        run.timer.skipped("conformance", "--conformance off")
        return None
    from pipeline.stages.conformance import release_suite

    with run.timer.stage("conformance") as stage:
        the_plan = _plan(run, made)
        previous = previous_release(run, trust, made)
        if run.options.join_shards:
            result = release_suite.join_shards(
                run.settings, the_plan, run.options.join_shards, _tested(run, made), previous
            )
        else:
            result = release_suite.for_release(
                run.settings, the_plan, progress=run.progress, previous=previous
            )
        run.report.conformance = result
        shards = f" (from {len(run.options.join_shards)} shards)" if run.options.join_shards else ""
        stage.detail = result.summary() + shards
        if not result.ok:
            stage.status = "failed"
    return result


def shard(run: Run, made: Made) -> None:
    """One shard of the suite (``--shard K/N``), its result written to ``--shard-result`` (never raises for
    a failing case: the release that joins the shards attaches the FAILED result and stops there)."""
    from pipeline.stages.conformance import release_suite

    assert run.options.shard is not None and run.options.shard_result is not None  # flow.check_shards
    with run.timer.stage("conformance") as stage:
        found = release_suite.for_shard(
            run.settings, _plan(run, made), run.options.shard, _tested(run, made), run.progress
        )
        found.write(run.options.shard_result)
        run.report.conformance = found.result
        stage.detail = f"shard {found.shard}: {found.result.summary()}; written to {run.options.shard_result}"


def _plan(run: Run, made: Made) -> Plan:
    from pipeline.stages.conformance import release_suite
    from pipeline.stages.conformance.upstream import BaseChoice

    return release_suite.release_plan(
        run.settings,
        _tested(run, made).executors,
        mode=run.options.conformance,
        fork_checkout=made.checkout.path if made.checkout is not None else None,
        progress=run.progress,
        suite_names=run.options.conformance_suites,
        base_choice=BaseChoice(run.options.conformance_bases),
    )


def _tested(run: Run, made: Made) -> ReleaseUnderTest:
    """The release the suite tests: what it resolved, and every published variant by digest."""
    from pipeline.config import VARIANTS
    from pipeline.stages.conformance.shards import ReleaseUnderTest

    published = {
        v: f"{i.repository}@{i.digest}" for v in VARIANTS if (i := made.published.get(v)) is not None
    }
    return ReleaseUnderTest(run.resolved.version, run.resolved.tag, run.resolved.commit, published)


def previous_release(run: Run, trust: Trust, made: Made) -> Baseline | None:
    """The previous released executor's verified test result: what a regression is measured against."""
    from pipeline.stages.conformance import regressions

    image = made.published.get("executor") or next(iter(made.published.values()), None)
    if image is None:
        return None
    return regressions.lookup(
        run.client, image.repository, run.resolved.tag, trust.policy, trust.loaded, run.progress
    )


def smoke(run: Run, pushed: BuiltImage) -> SmokeResult:
    """Run the nginx test image and check it over HTTP. A failure is raised after its FAILED test result
    is attached (test-result)."""
    from pipeline.stages import smoke

    with run.timer.stage("smoke") as stage:
        checked = smoke.run(
            run.settings, image=run.options.smoke_image or pushed.image, progress=run.progress
        )
        smoke.save_record(run.settings.record_file, checked)
        run.report.smoke = checked.to_dict()
        stage.detail = "passed" if checked.ok else "FAILED: " + ", ".join(c.name for c in checked.failed())
        if not checked.ok:
            stage.status = "failed"
    return checked

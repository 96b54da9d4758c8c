"""The test-result stage: after smoke, each tested digest gets an in-toto test result (PASSED or FAILED)
signed by the release's identity (:func:`test_result`, through :func:`pipeline.release.attestations.attest_tests`).

Also testing a release again: reusing what is published and signed (no rebuild) when its test results
are missing or FAILED (:func:`reuse`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError, SmokeError, VerifyError
from pipeline.release import attestations
from pipeline.release.context import Made, Run
from pipeline.release.state import VariantState

if TYPE_CHECKING:
    from pipeline.oci.descriptor import Descriptor
    from pipeline.signing.trust import Trust
    from pipeline.source.checkout import Checkout
    from pipeline.stages.conformance.result import ConformanceResult
    from pipeline.stages.publish import PublishedImage
    from pipeline.stages.smoke import SmokeResult


def test_result(
    run: Run,
    trust: Trust,
    published: Mapping[str, PublishedImage],
    checked: SmokeResult,
    executor: str,
    conformance: ConformanceResult | None = None,
) -> None:
    """Attach the test result (PASSED or FAILED) of the conformance suite (where it ran) and the smoke
    checks to every published digest; then, when either failed, raise its error (conformance first)."""
    report = run.report
    smoke_error: PipelineError | None = None
    if conformance is not None and not conformance.ok:
        from pipeline.stages.conformance.release_suite import raise_for_failure

        try:
            raise_for_failure(conformance)
        except PipelineError as exc:
            smoke_error = exc
    elif not checked.ok:
        try:
            checked.raise_for_failure()
        except SmokeError as exc:
            smoke_error = SmokeError(exc.message, hint=f"{exc.hint}\nrolling tags were not moved")
    results = attestations.conformance_results(conformance) + attestations.smoke_results(checked)
    passed = all(ok for _, ok in results)
    try:
        with run.timer.stage("test-result") as stage:
            attested = attestations.attest_tests(
                attestations.Attester.of(run, trust),
                run.subject,
                {variant: (image.repository, image.digest) for variant, image in published.items()},
                results,
                attestations.smoke_configuration(executor, checked.image),
                warned=attestations.conformance_warned(conformance),
            )
            report.attestations += [item.to_dict() for item in attested]
            result = "PASSED" if passed else "FAILED"
            stage.detail = f"{result} attached to {len(attested)} image(s)"
    except PipelineError as exc:
        if smoke_error is None:
            raise
        raise type(smoke_error)(
            smoke_error.message,
            hint=f"{smoke_error.hint}\nand its FAILED test result could not be attached: {exc}",
        ) from None
    if smoke_error is not None:
        raise smoke_error


def reuse(run: Run, states: Mapping[str, VariantState], checkout: Checkout | None) -> Made:
    """Every variant's digest is published and signed, but not (validly) tested PASSED: test it again
    without building anything (the version tags name what was built and signed): the value the build
    side would have handed on, from what the check found (    ``checkout``: the fork, checked out now when the full conformance suite wants its own cases)."""
    from pipeline.registry.reference import Reference
    from pipeline.stages.publish import PublishedImage

    client, report, timer = run.client, run.report, run.timer
    detail = "every image is published and signed; testing it again"
    for name in ("fork", "build", "publish", "sign"):
        if name != "fork" or checkout is None:
            timer.skipped(name, detail)
    published: dict[str, PublishedImage] = {}
    images: dict[str, Descriptor] = {}
    for variant, state in states.items():
        assert state.digest is not None
        desc = client.head_manifest(Reference.parse(f"{state.plan.repository}@{state.digest}"))
        if desc is None:
            raise VerifyError(f"{state.plan.repository}@{state.digest} vanished from the registry")
        images[variant] = desc
        published[variant] = PublishedImage(
            variant,
            state.plan.repository,
            state.digest,
            list(state.plan.version_tags),
            state.plan.version,
            pending_rolling=list(state.plan.rolling_tags),
        )
        report.images[variant] = {**published[variant].to_dict(), "bytes_uploaded": 0, "kept": {}}
    trusted = next(iter(states.values())).signed
    trust_config = trusted.path if trusted is not None else None
    return Made(published, None, images, {v: s.plan for v, s in states.items()}, trust_config, checkout)

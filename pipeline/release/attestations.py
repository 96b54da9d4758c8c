"""The release's evidence in the registry: signed attestations about each published digest.

After the build: SLSA provenance for each variant's index and an SPDX SBOM for each platform image.

After smoke (and any later test stage) the release attaches, for every variant's digest, an in-toto
test-result attestation signed by the release's identity: PASSED or FAILED. A version is up to date
only when each digest's latest valid result is PASSED, and rolling tags never move to a digest whose
latest result is not (see :mod:`pipeline.release.state`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.errors import VerifyError
from pipeline.evidence.buildfacts import BuildFacts, project_commit, project_version
from pipeline.evidence.testresult import (
    PASSED,
    TEST_RESULT,
    names_release,
    predicate,
    release_descriptor,
    result_of,
)
from pipeline.registry.reference import Reference
from pipeline.release.binding import SignatureChecks, Subject, check_provenance
from pipeline.signing.verify import Outcome
from pipeline.stages import attest
from pipeline.urls import redact

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.oci.descriptor import Descriptor
    from pipeline.oci.layout import Layout
    from pipeline.policy.tagplan import TagPlan
    from pipeline.progress import Progress
    from pipeline.registry.client import Client
    from pipeline.release.context import Run
    from pipeline.release.signer import Signer
    from pipeline.signing.trust import Trust
    from pipeline.source.checkout import Checkout
    from pipeline.stages.conformance.result import ConformanceResult
    from pipeline.stages.smoke import SmokeResult


def ci_run_url(env: Mapping[str, str]) -> str | None:
    """The CI run this process belongs to (GitHub Actions or GitLab CI), if any."""
    if env.get("GITHUB_RUN_ID") and env.get("GITHUB_REPOSITORY"):
        server = env.get("GITHUB_SERVER_URL") or "https://github.com"
        return f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return env.get("CI_JOB_URL") or None


def smoke_results(checked: SmokeResult) -> list[tuple[str, bool]]:
    """The smoke checks as test results: (``smoke/<check>``, passed)."""
    return [(f"smoke/{check.name}", check.ok) for check in checked.checks]


def conformance_results(result: ConformanceResult | None) -> list[tuple[str, bool]]:
    """The conformance cases as test results: (``conformance/<variant>/<case>``, passed): every case
    that passed, and the gating ones that failed (a regression gates too). Skipped cases are left out;
    a reported-only case that did not pass is in :func:`conformance_warned`."""
    if result is None:
        return []
    return [
        (case.test_name, case.status == "passed")
        for case in result.cases
        if case.status == "passed" or (case.gating and case.status == "failed")
    ]


def conformance_warned(result: ConformanceResult | None) -> list[str]:
    """The reported-only cases that failed or differ (the test result's ``warnedTests``): the next
    release reads them as "not passed", so they never gate it."""
    if result is None:
        return []
    return [case.test_name for case in result.cases if case.status == "failed" and not case.gating]


def smoke_configuration(executor: str, image: str) -> list[dict[str, Any]]:
    """What smoke ran: the executor that built the test image, and the image it checked."""
    out: list[dict[str, Any]] = []
    for name, ref in (("executor", executor), ("smoke-image", image)):
        item: dict[str, Any] = {"name": name, "uri": ref}
        _, _, digest = ref.partition("@")
        if digest.startswith("sha256:"):
            item["digest"] = {"sha256": digest.removeprefix("sha256:")}
        out.append(item)
    return out


def run_id(env: Mapping[str, str]) -> str:
    """What names this run in its test result: the CI run's URL, else a fresh ``urn:uuid:``."""
    import uuid

    return ci_run_url(env) or f"urn:uuid:{uuid.uuid4()}"


@dataclass(frozen=True)
class Attester:
    """What signing and attaching attestations as the release's identity takes."""

    settings: Settings
    signer: Signer
    trust: Trust
    client: Client
    progress: Progress

    @classmethod
    def of(cls, run: Run, trust: Trust) -> Attester:
        return cls(run.settings, run.signer, trust, run.client, run.progress)


def attest_tests(
    attester: Attester,
    subject: Subject,
    subjects: Mapping[str, tuple[str, str]],
    results: Sequence[tuple[str, bool]],
    configuration: Sequence[Mapping[str, Any]],
    warned: Sequence[str] = (),
) -> list[attest.Attested]:
    """Sign and attach one test result (from ``results``) to each ``variant -> (repository, digest)``;
    it names the run (``url``) and the release it tested (``subject``: its version, tag and commit).
    ``warned``: tests that did not pass but do not fail the result (reported, not gating)."""
    release = release_descriptor(subject.version, subject.tag, subject.commit)
    body = predicate(results, [*configuration, release], url=run_id(attester.settings.env), warned=warned)
    claims = [
        attest.Claim(Reference.parse(repository), digest, TEST_RESULT, body)
        for repository, digest in subjects.values()
    ]
    return _signed(attester, claims)


def _signed(attester: Attester, claims: Sequence[attest.Claim]) -> list[attest.Attested]:
    """Sign and attach ``claims`` as the release's identity."""
    config, token = attester.signer.session(attester.trust, [claim.repository.registry for claim in claims])
    policy = attester.trust.policy
    if token.identity != policy.identity or token.issuer != policy.issuer:
        raise VerifyError(
            f"the identity token is for {token.identity} (issuer {token.issuer}), but the release "
            f"verifies {policy.identity} (issuer {policy.issuer})",
            hint="make --certificate-identity and --certificate-oidc-issuer match the signing identity",
        )
    return attest.attest(
        claims, client=attester.client, config=config, token=token, progress=attester.progress
    )


def build_facts(checkout: Checkout, inputs: Mapping[str, Any], pinned_url: str) -> BuildFacts:
    """The facts of this build, for its SBOMs and provenance."""
    from pipeline.image import cabundle
    from pipeline.stages.build import source_url

    ca_bundle = str(inputs.get("ca_bundle") or "")
    return BuildFacts(
        source_url=redact(source_url(checkout, pinned_url)),
        tag=checkout.tag,
        commit=checkout.commit,
        commit_time=checkout.commit_time,
        module=checkout.module,
        go_version=str(inputs.get("go_version") or "unknown"),
        go_origin=str(inputs.get("go_origin") or "unknown"),
        certifi=cabundle.CERTIFI_VERSION if ca_bundle.startswith("certifi") else "custom",
        busybox=inputs.get("busybox"),
        project_version=project_version(),
        project_commit=project_commit(),
    )


def attest_build(
    run: Attester,
    facts: BuildFacts,
    images: Mapping[str, tuple[str, Descriptor]],
    layout: Layout,
    times: tuple[float, float],
) -> list[attest.Attested]:
    """Attach SLSA provenance to each variant's index and an SPDX SBOM to each platform image, each
    where no valid one from the release's identity is attached yet (a run killed halfway through
    attest leaves some: the next run attaches the rest)."""
    from pipeline.evidence import provenance, sbom
    from pipeline.oci.manifest import Manifest

    checks = SignatureChecks(run.client, run.trust)
    platforms = sorted({str(d.platform) for _, desc in images.values() for d in _platforms(layout, desc)})
    claims: list[attest.Claim] = []
    for variant, (repository, desc) in images.items():
        ref = Reference.parse(repository)
        body = provenance.predicate(
            facts,
            variant=variant,
            platforms=platforms,
            builder_id=run.trust.policy.identity,
            invocation_id=ci_run_url(run.settings.env),
            started=times[0],
            finished=times[1],
            ca_bundle_digest=str(_ca_digest()),
        )
        claims.append(attest.Claim(ref, desc.digest, provenance.SLSA_PROVENANCE_V1, body))
        for platform in _platforms(layout, desc):
            manifest = layout.read_manifest(platform)
            assert isinstance(manifest, Manifest)
            files = sbom.image_files(manifest, layout.read_blob)
            document = sbom.document(facts, repository, platform.digest, str(platform.platform), files)
            claims.append(attest.Claim(ref, platform.digest, sbom.SPDX_DOCUMENT, document))
    wanted = [c for c in claims if _latest(checks, c.repository.repo_str, c.digest, c.predicate_type) is None]
    return _signed(run, wanted) if wanted else []


def _platforms(layout: Layout, desc: Descriptor) -> list[Descriptor]:
    from pipeline.oci.manifest import Index

    item = layout.read_manifest(desc)
    if not isinstance(item, Index):
        return []
    return [m for m in item.manifests if m.platform is not None]


def _ca_digest() -> str:
    from pipeline.image import cabundle

    return "sha256:" + cabundle.CERTIFI_SHA256


def _latest(checks: SignatureChecks, repository: str, digest: str, predicate_type: str) -> Outcome | None:
    ref = Reference.parse(f"{repository}@{digest}")
    return attest.latest(
        attest.find(checks.client, ref, digest, predicate_type, checks.policy, checks.loaded)
    )


def missing_build_evidence(
    checks: SignatureChecks, plan: TagPlan, variant: str, digest: str, subject: Subject
) -> list[str]:
    """What of the build's evidence is not validly attached to ``plan``'s ``digest``: the provenance on
    the index (a verified one must name this release, else VerifyError) and an SBOM on each platform
    image. Each entry names the predicate type and the digest it is missing on."""
    from pipeline.evidence import provenance, sbom
    from pipeline.stages.sign import platform_manifests

    missing: list[str] = []
    found = _latest(checks, plan.repository, digest, provenance.SLSA_PROVENANCE_V1)
    body = found.statement.get("predicate") if found is not None and found.statement else None
    if isinstance(body, dict):
        check_provenance(plan, variant, provenance.parameters(body), subject)
    else:
        missing.append(f"provenance on {digest}")
    for platform in platform_manifests(checks.client, Reference.parse(plan.repository), digest):
        if _latest(checks, plan.repository, platform.digest, sbom.SPDX_DOCUMENT) is None:
            missing.append(f"SBOM on {platform.digest} ({platform.platform})")
    return missing


def latest_result(checks: SignatureChecks, repository: str, digest: str, subject: Subject) -> str | None:
    """The result of the latest valid test result (by verified time) for ``repository@digest`` from the
    release's identity, when it names this release (its version, tag and commit); else None."""
    found = _latest(checks, repository, digest, TEST_RESULT)
    body = found.statement.get("predicate") if found is not None and found.statement else None
    if not isinstance(body, dict):
        return None
    if not names_release(body, subject.version, subject.tag, subject.commit):
        return None
    return result_of(body)


def require_passed(checks: SignatureChecks, repository: str, digest: str, subject: Subject) -> None:
    """Raise unless the latest valid test result for the digest is PASSED for this release (before
    moving rolling tags)."""
    found = latest_result(checks, repository, digest, subject)
    if found != PASSED:
        identity = checks.policy.identity
        raise VerifyError(
            f"{repository}@{digest}'s latest test result from {identity} for {subject.tag} is "
            f"{found or 'missing'}, not {PASSED}",
            hint="rolling tags were not moved; run the release again to test it again",
        )

"""The release's evidence in the registry: signed attestations about each published digest.

After the build: SLSA provenance for each variant's index and an SPDX SBOM for each platform image.

After smoke (and any later test stage) the release attaches, for every variant's digest, an in-toto
test-result attestation signed by the release's identity: PASSED or FAILED. A version is up to date
only when each digest's latest valid result is PASSED, and rolling tags never move to a digest whose
latest result is not (see :mod:`pipeline.release.state`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipeline.errors import VerifyError
from pipeline.evidence.buildfacts import BuildFacts, project_commit, project_version
from pipeline.evidence.testresult import PASSED, TEST_RESULT, predicate
from pipeline.registry.reference import Reference
from pipeline.release.signer import Signing
from pipeline.signing.verify import Policy
from pipeline.stages import attest
from pipeline.urls import redact

if TYPE_CHECKING:
    from sigstore.models import ClientTrustConfig

    from pipeline.config import Settings
    from pipeline.oci.descriptor import Descriptor
    from pipeline.oci.layout import Layout
    from pipeline.progress import Progress
    from pipeline.registry.client import Client
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


def attest_tests(
    settings: Settings,
    signing: Signing,
    client: Client,
    subjects: Mapping[str, tuple[str, str]],
    results: Sequence[tuple[str, bool]],
    configuration: Sequence[Mapping[str, Any]],
    progress: Progress,
    warned: Sequence[str] = (),
) -> list[attest.Attested]:
    """Sign and attach one test result (from ``results``) to each ``variant -> (repository, digest)``."""

    body = predicate(results, configuration, url=ci_run_url(settings.env), warned=warned)
    claims = [
        attest.Claim(Reference.parse(repository), digest, TEST_RESULT, body)
        for repository, digest in subjects.values()
    ]
    return _signed(settings, signing, client, claims, progress)


def _signed(
    settings: Settings, signing: Signing, client: Client, claims: Sequence[attest.Claim], progress: Progress
) -> list[attest.Attested]:
    """Sign and attach ``claims`` as the release's identity."""
    from pipeline.stages import sign as sign_stage

    with sign_stage.session(
        settings,
        registries=[claim.repository.registry for claim in claims],
        identity_token=signing.identity_token,
        trust_config=signing.trust_config,
        local=signing.local,
        progress=progress,
    ) as (config, token, _path):
        if token.identity != signing.identity or token.issuer != signing.issuer:
            raise VerifyError(
                f"the identity token is for {token.identity} (issuer {token.issuer}), but the release "
                f"verifies {signing.identity} (issuer {signing.issuer})",
                hint="make --certificate-identity and --certificate-oidc-issuer match the signing identity",
            )
        return attest.attest(claims, client=client, config=config, token=token, progress=progress)


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
    settings: Settings,
    signing: Signing,
    client: Client,
    facts: BuildFacts,
    images: Mapping[str, tuple[str, Descriptor]],
    layout: Layout,
    times: tuple[float, float],
    progress: Progress,
) -> list[attest.Attested]:
    """Attach SLSA provenance to each variant's index and an SPDX SBOM to each platform image,
    unless every index already has a valid provenance from the release's identity."""
    from pipeline.evidence import provenance, sbom
    from pipeline.oci.manifest import Manifest
    from pipeline.release.signer import trust_configs

    configs = [config for _, config in trust_configs(settings, signing)]
    policy = Policy(signing.identity, signing.issuer)
    if all(
        attest.latest(
            attest.find(
                client, Reference.parse(repo), desc.digest, provenance.SLSA_PROVENANCE_V1, policy, configs
            )
        )
        for repo, desc in images.values()
    ):
        return []
    platforms = sorted({str(d.platform) for _, desc in images.values() for d in _platforms(layout, desc)})
    claims: list[attest.Claim] = []
    for variant, (repository, desc) in images.items():
        ref = Reference.parse(repository)
        body = provenance.predicate(
            facts,
            variant=variant,
            platforms=platforms,
            builder_id=signing.identity,
            invocation_id=ci_run_url(settings.env),
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
    return _signed(settings, signing, client, claims, progress)


def _platforms(layout: Layout, desc: Descriptor) -> list[Descriptor]:
    from pipeline.oci.manifest import Index

    item = layout.read_manifest(desc)
    if not isinstance(item, Index):
        return []
    return [m for m in item.manifests if m.platform is not None]


def _ca_digest() -> str:
    from pipeline.image import cabundle

    return "sha256:" + cabundle.CERTIFI_SHA256


def latest_result(
    client: Client,
    repository: str,
    digest: str,
    signing: Signing,
    configs: Sequence[tuple[str | None, ClientTrustConfig]],
) -> str | None:
    """The latest valid test result for ``repository@digest`` from the release's identity, or None."""
    policy = Policy(signing.identity, signing.issuer)
    ref = Reference.parse(f"{repository}@{digest}")
    return attest.latest_test_result(client, ref, digest, policy, [config for _, config in configs])


def require_passed(
    client: Client,
    repository: str,
    digest: str,
    signing: Signing,
    configs: Sequence[tuple[str | None, ClientTrustConfig]],
) -> None:
    """Raise unless the latest valid test result for the digest is PASSED (before moving rolling tags)."""
    found = latest_result(client, repository, digest, signing, configs)
    if found != PASSED:
        raise VerifyError(
            f"{repository}@{digest}'s latest test result from {signing.identity} is "
            f"{found or 'missing'}, not {PASSED}",
            hint="rolling tags were not moved; run the release again to test it again",
        )

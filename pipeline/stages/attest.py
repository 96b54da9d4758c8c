"""Attestations: signed in-toto statements about a published digest, attached as ``cosign attest`` does.

cosign v3 (the new bundle format): the statement is signed as DSSE into a Sigstore bundle, and the
bundle is attached as a referrer of the digest, like a signature (:mod:`pipeline.signing.attach`)
but with the statement's predicate type in ``dev.sigstore.bundle.predicateType``. Reading opens every
referrer and its bundle (never trusting descriptors), verifies it against the trust root, identity
and issuer, and requires the exact predicate type, as ``cosign verify-attestation --type`` does.

Three types: an SPDX SBOM, SLSA provenance v1, an in-toto test result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.config import Settings
from pipeline.errors import SignError, UsageError, VerifyError
from pipeline.evidence.testresult import FAILED, TEST_RESULT, result_of
from pipeline.progress import Progress, Silent
from pipeline.registry.client import Client
from pipeline.registry.reference import Reference
from pipeline.signing import attach, bundles, trust
from pipeline.signing.statement import in_toto_statement
from pipeline.signing.verify import Outcome, Policy, trusted_by, verify_bundle

if TYPE_CHECKING:  # sigstore takes a while to import: pipeline.signing imports it when it runs
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken

    from pipeline.stages.platform_sboms import PlatformAttestations

SPDX_DOCUMENT = "https://spdx.dev/Document"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"

# `invoke verify --type` names -> predicate types, and cosign verify-attestation's --type for each.
PREDICATE_TYPES = {"sbom": SPDX_DOCUMENT, "provenance": SLSA_PROVENANCE_V1, "test-result": TEST_RESULT}
COSIGN_TYPES = {SPDX_DOCUMENT: "spdxjson", SLSA_PROVENANCE_V1: "slsaprovenance1", TEST_RESULT: TEST_RESULT}


def predicate_type(kind: str) -> str:
    """The predicate type for a ``--type`` name (or a predicate type URI given as is)."""
    if kind in PREDICATE_TYPES:
        return PREDICATE_TYPES[kind]
    if kind in PREDICATE_TYPES.values():
        return kind
    raise UsageError(
        f"unknown attestation type {kind!r}",
        hint="pass --type " + "|".join(PREDICATE_TYPES) + " (or signature, the default)",
    )


def cosign_check(predicate: str, image: str, identity: str, issuer: str) -> str:
    """The cosign command that checks an attestation of this type independently."""
    kind = COSIGN_TYPES.get(predicate, predicate)
    return (
        f"cosign verify-attestation --type {kind} --certificate-identity {identity} "
        f"--certificate-oidc-issuer {issuer} {image}"
    )


@dataclass(frozen=True)
class Claim:
    """An attestation to make: ``predicate`` of ``predicate_type`` about ``repository@digest``."""

    repository: Reference
    digest: str
    predicate_type: str
    predicate: Mapping[str, Any]


@dataclass(frozen=True)
class Attested:
    repository: str
    digest: str
    predicate_type: str
    referrer: str  # the referrer manifest's digest
    bytes: int  # what it added to the registry: bundle + referrer manifest

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "predicate_type": self.predicate_type,
            "referrer": self.referrer,
            "bytes": self.bytes,
        }


def attest(
    claims: Sequence[Claim],
    *,
    client: Client,
    config: ClientTrustConfig,
    token: IdentityToken,
    progress: Progress | None = None,
) -> list[Attested]:
    """Sign each claim as an in-toto statement in DSSE and attach its bundle to the digest."""
    progress = progress or Silent()
    subjects = []
    for claim in claims:  # refuse before signing anything
        trust.check_destination(claim.repository.registry, config)
        subject = client.head_manifest(claim.repository.with_digest(claim.digest))
        if subject is None:
            raise SignError(
                f"{claim.repository.repo_str}@{claim.digest} is not in the registry",
                hint="publish it first",
            )
        subjects.append(subject)
    done: list[Attested] = []
    with bundles.open_signer(config, token) as signer:
        for claim, subject in zip(claims, subjects, strict=True):
            name = claim.repository.repo_str
            progress.step(f"attesting {claim.predicate_type} for {name}@{claim.digest}")
            payload = in_toto_statement(claim.digest, name, claim.predicate_type, dict(claim.predicate))
            bundle_json = bundles.sign_statement(signer, payload, f"the attestation of {claim.digest}")
            data = bundle_json.to_json().encode("utf-8")
            referrer = attach.attach_bundle(client, claim.repository, subject, data, claim.predicate_type)
            done.append(
                Attested(name, claim.digest, claim.predicate_type, referrer.digest, len(data) + referrer.size)
            )
    return done


def find(
    client: Client,
    ref: Reference,
    digest: str,
    predicate: str,
    policy: Policy,
    configs: Sequence[ClientTrustConfig],
) -> list[Outcome]:
    """Each bundle attached to ``digest`` whose statement claims ``predicate``, verified (under the
    first of ``configs`` that accepts it) or with the reason it was rejected."""
    outcomes: list[Outcome] = []
    for found in attach.iter_bundles(client, ref, digest):
        if found.data is None:
            outcomes.append(Outcome(found.source, "unknown", False, found.problem))
            continue
        if bundles.claimed_predicate_type(found.data) != predicate:
            continue  # a signature, or another type of attestation
        tried: list[tuple[ClientTrustConfig, Outcome]] = []
        for config in configs:
            outcome = verify_bundle(
                found.data, digest, policy, config, source=found.source, predicate_type=predicate
            )
            tried.append((config, outcome))
            if outcome.verified:
                break
        if tried and tried[-1][1].verified:
            outcomes.append(tried[-1][1])
        elif tried:  # rejected everywhere: report it under the trust root that accepts its chain
            data = found.data
            outcomes.append(next((o for c, o in tried if trusted_by(data, c)), tried[0][1]))
        else:
            outcomes.append(Outcome(found.source, "unknown", False, "no trust config to check it with"))
    return outcomes


def latest(outcomes: Sequence[Outcome]) -> Outcome | None:
    """The most recently signed valid attestation (on a tie, a FAILED test result wins)."""
    valid = [o for o in outcomes if o.verified and o.statement is not None]
    if not valid:
        return None

    def key(outcome: Outcome) -> tuple[int, int]:
        body = (outcome.statement or {}).get("predicate")
        failed = isinstance(body, dict) and result_of(body) == FAILED
        return outcome.signed_at, int(failed)

    return max(valid, key=key)


def latest_test_result(
    client: Client, ref: Reference, digest: str, policy: Policy, configs: Sequence[ClientTrustConfig]
) -> str | None:
    """The result (PASSED, WARNED, FAILED) of the latest valid test result for ``digest``, or None."""
    found = latest(find(client, ref, digest, TEST_RESULT, policy, configs))
    if found is None or found.statement is None:
        return None
    body = found.statement.get("predicate")
    return result_of(body) if isinstance(body, dict) else None


@dataclass
class AttestationResult:
    """What `invoke verify --type` found: the bundles of that type and the latest valid one."""

    image: str
    digest: str
    predicate_type: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def chosen(self) -> Outcome | None:
        return latest(self.outcomes)

    @property
    def verified(self) -> bool:
        return self.chosen is not None

    @property
    def predicate(self) -> dict[str, Any] | None:
        chosen = self.chosen
        body = chosen.statement.get("predicate") if chosen and chosen.statement else None
        return body if isinstance(body, dict) else None

    def to_dict(self) -> dict[str, Any]:
        chosen = self.chosen
        return {
            "verified": self.verified,
            "image": self.image,
            "digest": self.digest,
            "predicate_type": self.predicate_type,
            "referrer": chosen.source if chosen else None,
            "signed_at": chosen.signed_at if chosen else None,
            "attestations": [o.to_dict() for o in self.outcomes],
            "predicate": self.predicate,
        }

    def explain(self) -> str:
        where = f"{self.image}@{self.digest}"
        if not self.outcomes:
            return f"no {self.predicate_type} attestation is attached to {where}"
        lines = [f"{len(self.outcomes)} {self.predicate_type} attestation(s) attached to {where}:"]
        for o in self.outcomes:
            who = ", ".join(o.identity) or "unknown identity"
            state = "valid" if o.verified else f"rejected: {o.reason}"
            lines.append(f"  {o.source} ({who}, issuer {o.issuer}): {state}")
        return "\n".join(lines)


def describe(result: AttestationResult | PlatformAttestations) -> str:
    """For people: what was found, and the chosen attestation's predicate (indented JSON)."""
    if not isinstance(result, AttestationResult):
        return result.describe()
    text = result.explain()
    chosen = result.chosen
    if chosen is None:
        return text
    body = json.dumps(result.predicate, indent=2, sort_keys=True)
    return f"{text}\nverified {result.predicate_type} (referrer {chosen.source}); its predicate:\n{body}"


def verify(
    image: Reference,
    predicate: str,
    *,
    client: Client,
    policy: Policy,
    configs: Sequence[ClientTrustConfig],
    progress: Progress | None = None,
) -> AttestationResult:
    """The attestations of type ``predicate`` attached to ``image``, each verified."""
    progress = progress or Silent()
    desc = client.head_manifest(image)
    if desc is None:
        raise VerifyError(f"{image} is not in the registry", hint="check the reference")
    if image.digest and image.digest != desc.digest:
        raise VerifyError(f"{image} resolved to {desc.digest}")
    progress.step(f"looking for {predicate} attestations of {image.repo_str}@{desc.digest}")
    outcomes = find(client, image, desc.digest, predicate, policy, configs)
    return AttestationResult(image.repo_str, desc.digest, predicate, outcomes)


def run_verify(
    settings: Settings,
    *,
    image: str,
    kind: str,
    certificate_identity: str,
    certificate_oidc_issuer: str,
    progress: Progress | None = None,
) -> AttestationResult | PlatformAttestations:
    """`invoke verify --type KIND`: find and check the image's attestations of that type (for an SBOM
    and an image index: those of each platform image)."""
    if not image:
        raise UsageError("which image? pass --image REF", hint="e.g. --image REGISTRY/REPO:TAG")
    predicate = predicate_type(kind)
    from pipeline.stages.verify_images import verifying

    with verifying(settings, image, certificate_identity, certificate_oidc_issuer, progress) as (
        ref,
        client,
        policy,
        config,
    ):
        found = verify(ref, predicate, client=client, policy=policy, configs=[config], progress=progress)
        if predicate != SPDX_DOCUMENT:
            return found
        from pipeline.stages import platform_sboms  # SBOMs are on an index's platform images

        return platform_sboms.of_index(found, ref, client=client, policy=policy, configs=[config]) or found

"""The verify stage: find the Sigstore bundles attached to a published image and check them.

``verify`` passes only when one bundle is valid for the image's digest, from the given identity and
issuer; it reports what it found and why each failed. ``verifying`` is the setup every check of an
image's bundles shares (signatures, attestations, reproduce).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipeline.config import Settings
from pipeline.errors import UsageError, VerifyError
from pipeline.oci.manifest import Manifest, parse
from pipeline.progress import Progress, Silent
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.signing import attach, bundles, trust
from pipeline.signing.statement import COSIGN_SIGN_PREDICATE
from pipeline.signing.verify import Outcome, Policy, verify_bundle

if TYPE_CHECKING:  # sigstore takes a while to import: pipeline.signing imports it when it runs
    from sigstore.models import ClientTrustConfig


@dataclass
class VerifyResult:
    image: str
    digest: str
    outcomes: list[Outcome]
    sig_tag: dict[str, Any] | None = None  # the cosign v2 `.sig` image, if any (not verified here)

    @property
    def verified(self) -> bool:
        return any(o.verified for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "image": self.image,
            "digest": self.digest,
            "signatures": [o.to_dict() for o in self.outcomes],
            "cosign_v2_sig": self.sig_tag,
        }

    def explain(self) -> str:
        if not self.outcomes:
            lines = [f"no signature bundle is attached to {self.image}@{self.digest}"]
        else:
            lines = [f"{len(self.outcomes)} signature bundle(s) attached to {self.image}@{self.digest}:"]
        for o in self.outcomes:
            who = ", ".join(o.identity) or "unknown identity"
            state = "valid" if o.verified else f"rejected: {o.reason}"
            lines.append(f"  {o.source} ({o.kind}, {who}, issuer {o.issuer}): {state}")
        if self.sig_tag:
            lines.append(
                f"  (also a cosign v2 signature tag {self.sig_tag['tag']} with "
                f"{self.sig_tag['layers']} signature(s), for cosign v2; not counted here)"
            )
        return "\n".join(lines)


def verify(
    image: Reference,
    *,
    client: Client,
    policy: Policy,
    config: ClientTrustConfig,
    progress: Progress | None = None,
) -> VerifyResult:
    """Check the bundles attached to ``image``; the result says which passed and why others failed."""
    progress = progress or Silent()
    desc = client.head_manifest(image)
    if desc is None:
        raise VerifyError(f"{image} is not in the registry", hint="check the reference")
    digest = desc.digest
    if image.digest and image.digest != digest:
        raise VerifyError(f"{image} resolved to {digest}")
    progress.step(f"looking for signatures of {image.repo_str}@{digest}")
    outcomes = []
    for found in attach.iter_bundles(client, image, digest):
        if found.data is None:
            outcomes.append(Outcome(found.source, "unknown", False, found.problem))
            continue
        if not _is_signature(found.data):
            continue  # an attestation (SBOM, provenance, test result), not a signature
        outcomes.append(verify_bundle(found.data, digest, policy, config, source=found.source))
    sig_tag = None
    tag = attach.signature_tag(digest)
    found_sig = client.find_manifest(Reference(image.registry, image.repository).with_tag(tag))
    if found_sig is not None:
        sig = parse(found_sig[0], found_sig[1].media_type)
        layers = len(sig.layers) if isinstance(sig, Manifest) else 0
        sig_tag = {"tag": tag, "digest": found_sig[1].digest, "layers": layers}
    return VerifyResult(image=image.repo_str, digest=digest, outcomes=outcomes, sig_tag=sig_tag)


def signed_under(
    client: Client, image: Reference, digest: str, policy: Policy, configs: Sequence[ClientTrustConfig]
) -> int | None:
    """The index of the first of ``configs`` under which a signature attached to ``digest`` is valid
    for ``policy``, or None. Each bundle is read once, whatever the number of trust configs."""
    for found in attach.iter_bundles(client, image, digest):
        if found.data is None or not _is_signature(found.data):
            continue
        for index, config in enumerate(configs):
            if verify_bundle(found.data, digest, policy, config, source=found.source).verified:
                return index
    return None


def _is_signature(data: bytes) -> bool:
    return bundles.claimed_predicate_type(data) in (None, COSIGN_SIGN_PREDICATE)


def run_verify(
    settings: Settings,
    *,
    image: str,
    certificate_identity: str,
    certificate_oidc_issuer: str,
    progress: Progress | None = None,
) -> VerifyResult:
    """`invoke verify`: check the bundles attached to ``image`` against an identity and issuer."""

    if not image:
        raise UsageError("which image? pass --image REF", hint="e.g. --image REGISTRY/REPO:TAG")
    with verifying(settings, image, certificate_identity, certificate_oidc_issuer, progress) as (
        ref,
        client,
        policy,
        config,
    ):
        return verify(ref, client=client, policy=policy, config=config, progress=progress)


@contextmanager
def verifying(
    settings: Settings,
    image: str,
    certificate_identity: str,
    certificate_oidc_issuer: str,
    progress: Progress | None,
) -> Iterator[tuple[Reference, Client, Policy, ClientTrustConfig]]:
    """What every check of an image's bundles needs (signatures, attestations, reproduce): the parsed
    reference, a client for its registry, the identity policy and the trust config (the configured one,
    ``settings.trust_config``, else the public instance's)."""
    ref = Reference.parse(image)  # the input first: the trust root may come from the network
    policy = Policy(certificate_identity, certificate_oidc_issuer)
    config = trust.load(settings.trust_config)
    with Client(
        credentials=Credentials.from_environment(settings.env),
        insecure=settings.insecure_for(ref.host),
        ca_file=settings.ca_bundle,
        progress=progress,
    ) as client:
        yield ref, client, policy, config

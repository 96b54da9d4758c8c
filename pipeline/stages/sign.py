"""The sign stage, and verification of a published image.

``sign`` signs each published index (and with ``per_platform`` each platform manifest) as cosign v3
does, attaches the bundle as a referrer, and writes the cosign v2 ``.sig`` tag too. It signs only what
was published: the digest the registry answers for must be the digest it was asked to sign. With an
``expected`` identity, the signing certificate is checked right after signing, before anything is
attached. ``verify`` finds
the bundles attached to an image and passes only when one is valid for its digest, from the given
identity and issuer; it reports what it found and why each failed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import record
from pipeline.config import Settings
from pipeline.errors import RecordError, SignError, VerifyError
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.manifest import Index, Manifest, parse
from pipeline.progress import Progress, Silent
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services import sigstore as localsigstore
from pipeline.signing import attach, identity, trust
from pipeline.signing import bundle as bundles
from pipeline.signing.statement import COSIGN_SIGN_PREDICATE
from pipeline.signing.verify import Outcome, Policy, signer_of, verify_bundle

if TYPE_CHECKING:  # sigstore takes a while to import: pipeline.signing imports it when it runs
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken

# Descriptors in an index that are not images of a platform (buildx attestation manifests).
_REFERENCE_TYPE = "vnd.docker.reference.type"


@dataclass(frozen=True)
class Target:
    """One image to sign: the repository it was published to and the digest of its index."""

    name: str  # the variant (executor, debug, ...)
    repository: Reference
    digest: str


def targets_from_record(published: Mapping[str, Any]) -> list[Target]:
    """The images the publish stage recorded (``{"images": {variant: {repository, digest}}}``)."""
    images = published.get("images")
    if not isinstance(images, Mapping) or not images:
        raise RecordError(
            "the publish stage recorded no images",
            hint="run `invoke publish` first (or pass --image REF@DIGEST)",
        )
    result = []
    for name, image in sorted(images.items()):
        if not isinstance(image, Mapping) or "repository" not in image or "digest" not in image:
            raise RecordError(f"the publish record of {name} has no repository and digest")
        ref = Reference.parse(str(image["repository"]))
        result.append(Target(str(name), Reference(ref.registry, ref.repository), str(image["digest"])))
    return result


@dataclass
class Signed:
    name: str
    repository: str
    digest: str
    platform: str | None
    referrer: str
    sig_tag: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "repository": self.repository,
            "digest": self.digest,
            "platform": self.platform,
            "referrer": self.referrer,
            "sig_tag": self.sig_tag,
        }


@dataclass
class SignResult:
    identity: str
    issuer: str
    signed: list[Signed] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "issuer": self.issuer,
            "signatures": [s.to_dict() for s in self.signed],
        }


def _platform_manifests(client: Client, ref: Reference, digest: str) -> list[Descriptor]:
    data, desc = client.get_manifest(ref.with_digest(digest))
    item = parse(data, desc.media_type)
    if not isinstance(item, Index):
        return []
    return [
        m
        for m in item.manifests
        if m.media_type in mediatype.MANIFEST_TYPES
        and m.platform is not None
        and _REFERENCE_TYPE not in m.annotations
    ]


def sign(
    targets: Sequence[Target],
    *,
    client: Client,
    config: ClientTrustConfig,
    token: IdentityToken,
    per_platform: bool = False,
    simple_signing: bool = True,
    expected: Policy | None = None,
    progress: Progress | None = None,
) -> SignResult:
    """Sign each target's digest (and its platform manifests), attach bundles and `.sig` tags.

    ``expected``: the identity and issuer the signatures must carry; checked against the token before
    signing and against the signing certificate after signing, before any bundle is attached.
    """
    progress = progress or Silent()
    if not targets:
        raise SignError("nothing to sign", hint="publish images first, or name one")
    for target in targets:  # refuse before signing anything
        trust.check_destination(target.repository.registry, config)
    if expected is not None:
        _check_identity([token.identity], token.issuer, expected, "the identity token")
    work: list[tuple[Target, Descriptor, str | None]] = []
    for target in targets:
        subject = client.head_manifest(target.repository.with_digest(target.digest))
        if subject is None:
            raise SignError(
                f"{target.repository.repo_str}@{target.digest} is not in the registry",
                hint="publish it first (`invoke publish`)",
            )
        if subject.digest != target.digest:
            raise SignError(
                f"asked to sign {target.repository.repo_str}@{target.digest}, but the registry answers "
                f"for it with the digest {subject.digest}: nothing was signed",
                hint="the registry, or a proxy in between, is not serving what was published; sign only "
                "after `invoke publish` reports that digest",
            )
        work.append((target, subject, None))
        if per_platform:
            for manifest in _platform_manifests(client, target.repository, target.digest):
                work.append((target, manifest, str(manifest.platform)))
    result = SignResult(identity=token.identity, issuer=token.issuer)
    with bundles.open_signer(config, token) as signer:
        for target, subject, platform in work:
            ref = target.repository
            label = f"{ref.repo_str}@{subject.digest}" + (f" ({platform})" if platform else "")
            progress.step(f"signing {label}")
            signed = bundles.sign_digest(signer, subject.digest, ref.repo_str, simple_signing=simple_signing)
            if expected is not None:
                names, issuer = signer_of(signed.bundle)
                _check_identity(names, issuer, expected, "the signing certificate")
            referrer = attach.attach_bundle(client, ref, subject, signed.bundle_json)
            sig_tag = None
            if signed.simple_signing is not None:
                sig_tag = attach.attach_simple_signing(client, ref, subject.digest, signed.simple_signing).tag
            result.signed.append(
                Signed(target.name, ref.repo_str, subject.digest, platform, referrer.digest, sig_tag)
            )
    return result


def _check_identity(names: Sequence[str], issuer: str | None, expected: Policy, what: str) -> None:
    if expected.identity in names and issuer == expected.issuer:
        return
    raise SignError(
        f"{what} names {', '.join(names) or 'no identity'} (issuer {issuer or 'none'}), but the signatures "
        f"must be from {expected.identity} (issuer {expected.issuer}): nothing was attached",
        hint="make --certificate-identity and --certificate-oidc-issuer match the signing identity, or sign "
        "with the identity that verification expects",
    )


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
    for found in attach.find_bundles(client, image, digest):
        if found.data is None:
            outcomes.append(Outcome(found.source, "unknown", False, found.problem))
            continue
        if bundles.claimed_predicate_type(found.data) not in (None, COSIGN_SIGN_PREDICATE):
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


def run_sign(
    settings: Settings,
    *,
    images: Sequence[str] = (),
    identity_token: str | None = None,
    trust_config: str | None = None,
    per_platform: bool = False,
    sig_tag: bool = True,
    local: bool = False,
    expected: Policy | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """`invoke sign`: the targets (``images`` as REPO@DIGEST, else the publish record), an identity,
    a trust config (``local``: a local Sigstore instance started for this run), then :func:`sign`."""

    progress = progress or Silent()
    if images:
        targets = []
        for text in images:
            ref = Reference.parse(text)
            if not ref.digest:
                raise SignError(f"{text} names no digest", hint="sign images by digest: REPO@sha256:...")
            targets.append(
                Target(ref.repository.rsplit("/", 1)[-1], Reference(ref.registry, ref.repository), ref.digest)
            )
    else:
        targets = targets_from_record(record.stage(settings.record_file, "publish", needed_by="invoke sign"))
    with (
        Client(
            credentials=Credentials.from_environment(settings.env),
            insecure=settings.insecure_for(*(target.repository.host for target in targets)),
            ca_file=settings.ca_bundle,
            progress=progress,
        ) as client,
        session(
            settings,
            registries=[target.repository.registry for target in targets],
            identity_token=identity_token,
            trust_config=trust_config,
            local=local,
            progress=progress,
        ) as (config, token, path),
    ):
        result = sign(
            targets,
            client=client,
            config=config,
            token=token,
            per_platform=per_platform,
            simple_signing=sig_tag,
            expected=expected,
            progress=progress,
        )
        return {**result.to_dict(), "trust_config": path}


@contextmanager
def session(
    settings: Settings,
    *,
    registries: Sequence[str],
    identity_token: str | None,
    trust_config: str | None,
    local: bool,
    progress: Progress,
) -> Iterator[tuple[ClientTrustConfig, IdentityToken, str | None]]:
    """What signing needs: the trust config, an identity token and the config's path (``local``: a
    local Sigstore instance started for the duration, only for loopback ``registries``)."""
    if local:
        if trust_config:
            raise SignError("--local-sigstore and --trust-config exclude each other")
        for registry in registries:
            trust.refuse_local_for(registry)
        with localsigstore.start(settings.cache_dir, progress=progress) as instance:
            config = trust.load(instance.trust_config, error=SignError)
            token = identity.parse(localsigstore.mint_identity_token(), "the local Sigstore instance")
            yield config, token, str(instance.trust_config)
        return
    path = trust_config or (str(settings.trust_config) if settings.trust_config else None)
    config = trust.load(Path(path) if path else None)
    token = identity.acquire(config, token=identity_token, env=settings.env)
    yield config, token, path


def run_verify(
    settings: Settings,
    *,
    image: str,
    certificate_identity: str,
    certificate_oidc_issuer: str,
    trust_config: str | None = None,
    progress: Progress | None = None,
) -> VerifyResult:
    """`invoke verify`: check the bundles attached to ``image`` against an identity and issuer."""

    if not image:
        raise VerifyError("which image? pass --image REF", hint="e.g. --image REGISTRY/REPO:TAG")
    with verifying(
        settings, image, certificate_identity, certificate_oidc_issuer, trust_config, progress
    ) as (ref, client, policy, config):
        return verify(ref, client=client, policy=policy, config=config, progress=progress)


@contextmanager
def verifying(
    settings: Settings,
    image: str,
    certificate_identity: str,
    certificate_oidc_issuer: str,
    trust_config: str | None,
    progress: Progress | None,
) -> Iterator[tuple[Reference, Client, Policy, ClientTrustConfig]]:
    """What every check of an image's bundles needs (signatures, attestations, reproduce): the parsed
    reference, a client for its registry, the identity policy and the trust config (``trust_config``,
    else the configured one, else the public instance's)."""
    policy = Policy(certificate_identity, certificate_oidc_issuer)
    path = trust_config or (str(settings.trust_config) if settings.trust_config else None)
    config = trust.load(Path(path) if path else None)
    ref = Reference.parse(image)
    with Client(
        credentials=Credentials.from_environment(settings.env),
        insecure=settings.insecure_for(ref.host),
        ca_file=settings.ca_bundle,
        progress=progress,
    ) as client:
        yield ref, client, policy, config

"""The sign stage (verification is the verify stage's, :mod:`pipeline.stages.verify_images`).

``sign`` signs each published index (and with ``per_platform`` each platform manifest) as cosign v3
does, attaches the bundle as a referrer, and writes the cosign v2 ``.sig`` tag too. It signs only what
was published: the digest the registry answers for must be the digest it was asked to sign. With an
``expected`` identity, the signing certificate is checked right after signing, before anything is
attached. ``run_sign`` is `invoke sign`: the targets from the publish record or ``--image``, in a signing
``session`` (the trust config, an identity token, and a local Sigstore instance where one is wanted). A
release calls :func:`sign` itself, with the images it published and its own signer
(:func:`pipeline.release.make.sign`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import record
from pipeline.config import Settings
from pipeline.errors import RecordError, SignError, UsageError
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.manifest import Index, parse
from pipeline.progress import Progress, Silent
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services import localsigstore
from pipeline.signing import attach, bundles, identity, trust
from pipeline.signing.verify import Policy, signer_of
from pipeline.stages.publish import recorded_images

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


def targets_from_record(record_file: Path) -> list[Target]:
    """The images the publish stage recorded, to sign."""
    images = recorded_images(record_file, needed_by="invoke sign")
    if not images:
        raise RecordError(
            "the publish stage recorded no images",
            hint="run `invoke publish` first (or pass --image REF@DIGEST)",
        )
    result = []
    for name, text in sorted(images.items()):
        ref = Reference.parse(text)
        result.append(Target(name, Reference(ref.registry, ref.repository), ref.digest or ""))
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


def platform_manifests(client: Client, ref: Reference, digest: str) -> list[Descriptor]:
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
            for manifest in platform_manifests(client, target.repository, target.digest):
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


def run_sign(
    settings: Settings,
    *,
    images: Sequence[str] = (),
    identity_token: str | None = None,
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
                raise UsageError(f"{text} names no digest", hint="sign images by digest: REPO@sha256:...")
            targets.append(
                Target(ref.repository.rsplit("/", 1)[-1], Reference(ref.registry, ref.repository), ref.digest)
            )
    else:
        targets = targets_from_record(settings.record_file)
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
    local: bool,
    progress: Progress,
) -> Iterator[tuple[ClientTrustConfig, IdentityToken, str | None]]:
    """What signing needs: the trust config, an identity token and the config's path (``local``: a
    local Sigstore instance started for the duration, only for loopback ``registries``)."""
    if local:
        if settings.trust_config:
            raise SignError("--local-sigstore and --trust-config (pipeline.trust_config) exclude each other")
        for registry in registries:
            trust.refuse_local_for(registry)
        with localsigstore.start(settings.cache_dir, progress=progress) as instance:
            config = trust.load(instance.trust_config, error=SignError)
            token = identity.parse(localsigstore.mint_identity_token(), "the local Sigstore instance")
            yield config, token, str(instance.trust_root)  # the kept one: it verifies every local run
        return
    config = trust.load(settings.trust_config)
    token = identity.acquire(config, token=identity_token, env=settings.env)
    yield config, token, str(settings.trust_config) if settings.trust_config else None


def save_record(record_file: Path, result: Mapping[str, Any]) -> None:
    """The sign record: what `invoke sign` (or the release) signed, and the trust config it used."""
    record.save(record_file, "sign", dict(result))

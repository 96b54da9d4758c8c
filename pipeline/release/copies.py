"""What of the primary registry's signatures may be copied to the release's other registries: only what
verifies as the release's own.

The referrers of a digest (and its cosign v2 ``.sig`` image) are writable by anyone with push access to
the primary; copying them unchecked would carry a stranger's bundle into every other registry under the
release's credentials. So a bundle is copied only when it verifies for the digest, from the release's
identity, under the release's trust configs (a signature, or an attestation of the type it claims), and
a ``.sig`` layer only when its certificate is one of those verified signatures' certificates, its
signature over its payload verifies with that certificate's key, and the payload names the digest.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError, RegistryError
from pipeline.oci.manifest import Manifest, parse
from pipeline.registry.reference import Reference
from pipeline.signing import attach, bundles, statement
from pipeline.signing.verify import verify_bundle

if TYPE_CHECKING:
    from cryptography.x509 import Certificate

    from pipeline.oci.descriptor import Descriptor
    from pipeline.registry.client import Client
    from pipeline.release.binding import SignatureChecks


@dataclass
class Verified:
    """A digest's bundles and ``.sig`` layers that the release may copy, and what it left behind."""

    digest: str
    bundles: list[tuple[bytes, str]] = field(default_factory=list)  # (bundle, predicate type)
    sig_layers: list[Descriptor] = field(default_factory=list)
    left: int = 0  # bundles and layers that did not verify as the release's own


def verified(checks: SignatureChecks, repository: str, digest: str) -> Verified:
    """The bundles of ``repository@digest`` that verify as the release's, and its own ``.sig`` layers."""
    source = Reference.parse(repository)
    out = Verified(digest)
    certificates: list[Certificate] = []
    for found in attach.find_bundles(checks.client, source, digest):
        kind = bundles.claimed_predicate_type(found.data) if found.data else None
        kind = kind or statement.COSIGN_SIGN_PREDICATE
        if found.data is None or not _verifies(checks, found.data, digest, kind):
            out.left += 1
            continue
        out.bundles.append((found.data, kind))
        if kind == statement.COSIGN_SIGN_PREDICATE:
            certificates.append(bundles.parse(found.data, found.source).signing_certificate)
    sig = checks.client.find_manifest(source.with_tag(attach.signature_tag(digest)))
    if sig is not None:
        manifest = parse(sig[0], sig[1].media_type)
        layers = manifest.layers if isinstance(manifest, Manifest) else []
        for layer in layers:
            if _own_layer(checks, source, layer, digest, certificates):
                out.sig_layers.append(layer)
            else:
                out.left += 1
    return out


def verified_with_platforms(checks: SignatureChecks, source: Reference, digest: str) -> list[Verified]:
    """:func:`verified` for an index and each of its platform images (which carry the SBOMs)."""
    from pipeline.stages.sign import platform_manifests

    platforms = [m.digest for m in platform_manifests(checks.client, source, digest)]
    return [verified(checks, source.repo_str, d) for d in (digest, *platforms)]


def copy_to(client: Client, own: Verified, source: Reference, target: Reference) -> int:
    """Attach ``own`` (from ``source``'s repository) to the same digest in ``target``'s; how many
    bundles. RegistryError when the digest is not there."""
    subject = client.head_manifest(target.with_digest(own.digest))
    if subject is None:
        raise RegistryError(f"{target.repo_str}@{own.digest} is not there")
    for data, kind in own.bundles:  # signatures and attestations, each under its own type
        attach.attach_bundle(client, target, subject, data, kind)
    attach.copy_simple_signing(client, source, target, own.digest, own.sig_layers)
    return len(own.bundles)


def _verifies(checks: SignatureChecks, data: bytes, digest: str, kind: str) -> bool:
    return any(
        verify_bundle(data, digest, checks.policy, config, predicate_type=kind).verified
        for config in checks.loaded
    )


def _own_layer(
    checks: SignatureChecks,
    source: Reference,
    layer: Descriptor,
    digest: str,
    certificates: list[Certificate],
) -> bool:
    """Whether a ``.sig`` layer is the release's: one of its verified certificates signed this payload,
    which names ``digest``."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = layer.annotations.get(bundles.COSIGN_CERTIFICATE_ANNOTATION, "")
    signature = layer.annotations.get(bundles.COSIGN_SIGNATURE_ANNOTATION, "")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError:
        return False
    if cert not in certificates:
        return False
    try:
        payload = checks.client.get_blob(source, layer.digest)
        key = cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(base64.b64decode(signature), payload, ec.ECDSA(hashes.SHA256()))
    except (PipelineError, InvalidSignature, ValueError, AssertionError):
        return False
    return statement.check_simple_signing(payload, digest) is None

"""Signing a digest the way cosign does, into Sigstore bundles.

:func:`sign_digest` makes the cosign v3 signature (the in-toto statement signed as DSSE, one bundle)
and, by default, the cosign v2 one (the simple-signing payload signed as a plain message).
:func:`cosign_v2_annotations` gives the layer annotations cosign v2 writes for the latter.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.errors import SignError, VerifyError
from pipeline.signing import statement

if TYPE_CHECKING:  # sigstore takes a while to import: each function imports it when it runs
    from sigstore.models import Bundle, ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import Signer

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"

# Annotations cosign writes on the layer of a `sha256-<hex>.sig` image (cosign v2).
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
COSIGN_CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"


@dataclass(frozen=True)
class SimpleSigning:
    """The cosign v2 signature: the simple-signing payload and its message-signature bundle."""

    payload: bytes
    bundle: Bundle


@dataclass(frozen=True)
class SignedDigest:
    digest: str
    repository: str
    bundle: Bundle  # cosign v3: DSSE envelope over the in-toto statement
    simple_signing: SimpleSigning | None

    @property
    def bundle_json(self) -> bytes:
        return self.bundle.to_json().encode("utf-8")


@contextmanager
def open_signer(config: ClientTrustConfig, token: IdentityToken) -> Iterator[Signer]:
    """A sigstore Signer for ``token`` (one ephemeral key and certificate for all it signs)."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.oidc import ExpiredIdentity
    from sigstore.sign import SigningContext

    try:
        context = SigningContext.from_trust_config(config)
        with context.signer(token, cache=True) as signer:
            yield signer
    except ExpiredIdentity:
        raise SignError("the identity token has expired", hint="get a fresh token and sign again") from None
    except (SigstoreError, OSError, ValueError) as exc:
        raise SignError(
            f"Sigstore refused to issue a signing certificate: {_describe(exc)}",
            hint="check the identity token and that the Sigstore instance is reachable",
        ) from None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    cause = exc.__cause__
    if cause is not None and str(cause).strip():
        text = f"{text}: {str(cause).strip()}" if text else str(cause).strip()
    return text or type(exc).__name__


def sign_digest(
    signer: Signer, digest: str, repository: str = "", *, simple_signing: bool = True
) -> SignedDigest:
    """Sign ``digest`` (of an index or manifest in ``repository``) as cosign v3, and v2 too."""
    from sigstore import dsse
    from sigstore.errors import Error as SigstoreError

    try:
        bundle = signer.sign_dsse(dsse.Statement(statement.cosign_statement(digest, repository)))
        simple = None
        if simple_signing:
            payload = statement.simple_signing_payload(repository, digest)
            simple = SimpleSigning(payload=payload, bundle=signer.sign_artifact(payload))
    except (SigstoreError, OSError, ValueError) as exc:
        raise SignError(
            f"signing {digest} failed: {_describe(exc)}",
            hint="check that the Sigstore instance is reachable and the identity token still valid",
        ) from None
    return SignedDigest(digest=digest, repository=repository, bundle=bundle, simple_signing=simple)


def sign_statement(signer: Signer, payload: bytes, what: str) -> Bundle:
    """Sign an in-toto statement (``payload``) as DSSE: an attestation, as ``cosign attest`` makes it."""
    from sigstore import dsse
    from sigstore.errors import Error as SigstoreError

    try:
        return signer.sign_dsse(dsse.Statement(payload))
    except (SigstoreError, OSError, ValueError) as exc:
        raise SignError(
            f"signing {what} failed: {_describe(exc)}",
            hint="check that the Sigstore instance is reachable and the identity token still valid",
        ) from None


def claimed_predicate_type(data: bytes) -> str | None:
    """The predicateType a DSSE bundle's statement claims, before any verification (None: not a DSSE
    bundle, or unreadable). Only for choosing which bundles to verify as what."""
    try:
        envelope = json.loads(data).get("dsseEnvelope")
        payload = base64.b64decode(envelope["payload"], validate=True)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return statement.predicate_type_of(payload)


def parse(data: bytes | str, source: str) -> Bundle:
    """A Sigstore bundle from JSON, or a VerifyError that says where it came from."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle, InvalidBundle

    try:
        return Bundle.from_json(data)
    except (InvalidBundle, SigstoreError, ValueError, TypeError, KeyError) as exc:
        raise VerifyError(f"{source} is not a valid Sigstore bundle: {exc}") from None


def cosign_v2_annotations(simple: SimpleSigning) -> dict[str, str]:
    """The annotations cosign v2 puts on a `.sig` layer: signature, certificate, Rekor bundle."""
    from cryptography.hazmat.primitives import serialization

    inner = simple.bundle._inner
    entry = simple.bundle.log_entry._inner
    signature = inner.message_signature
    if signature is None or entry.inclusion_promise is None:
        raise SignError("the simple-signing bundle has no message signature or inclusion promise")
    rekor_bundle = {
        "SignedEntryTimestamp": base64.b64encode(entry.inclusion_promise.signed_entry_timestamp).decode(),
        "Payload": {
            "body": base64.b64encode(entry.canonicalized_body).decode(),
            "integratedTime": int(entry.integrated_time or 0),
            "logIndex": int(entry.log_index),
            "logID": entry.log_id.key_id.hex(),
        },
    }
    certificate = simple.bundle.signing_certificate.public_bytes(serialization.Encoding.PEM)
    return {
        COSIGN_SIGNATURE_ANNOTATION: base64.b64encode(signature.signature).decode(),
        COSIGN_CERTIFICATE_ANNOTATION: certificate.decode("ascii"),
        COSIGN_BUNDLE_ANNOTATION: json.dumps(rekor_bundle, separators=(",", ":")),
    }

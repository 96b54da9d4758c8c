"""Verifying signatures of a digest: which bundles are valid for it, from whom, and why not.

A bundle passes when sigstore-python verifies it against the trusted root and the policy (the
certificate's identity and OIDC issuer, sigstore's ``Identity``), and what it signed names the digest:
a cosign in-toto statement whose subject is the digest, or a simple-signing payload for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.errors import UsageError, VerifyError
from pipeline.signing import bundles, statement

if TYPE_CHECKING:  # sigstore takes a while to import: each function imports it when it runs
    from sigstore.models import Bundle, ClientTrustConfig
    from sigstore.verify import Verifier

OIDC_ISSUER_OID = "1.3.6.1.4.1.57264.1.1"


@dataclass(frozen=True)
class Policy:
    """Who must have signed: the certificate identity (SAN) and the OIDC issuer."""

    identity: str
    issuer: str

    def __post_init__(self) -> None:
        if not self.identity.strip() or not self.issuer.strip():
            raise UsageError(
                "verifying needs both a certificate identity and an OIDC issuer",
                hint="pass --certificate-identity and --certificate-oidc-issuer",
            )


@dataclass(frozen=True)
class Outcome:
    """One signature found for the digest: valid, or why not."""

    source: str  # where it was found (a referrer digest, a .sig tag, a file)
    kind: str  # "dsse" (cosign v3) or "message-signature" (cosign v2)
    verified: bool
    reason: str | None = None
    identity: list[str] = field(default_factory=list)
    issuer: str | None = None
    statement: dict[str, Any] | None = field(default=None, repr=False)  # a verified DSSE statement
    signed_at: int = 0  # when it was signed: its earliest verified time (see verified_time)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "kind": self.kind,
            "verified": self.verified,
            "identity": self.identity,
            "issuer": self.issuer,
        }
        if self.reason:
            data["reason"] = self.reason
        return data


def signer_of(bundle: Bundle) -> tuple[list[str], str | None]:
    """The identities (SANs) and issuer in a bundle's certificate, for the report."""
    from cryptography.x509 import SubjectAlternativeName, UniformResourceIdentifier
    from cryptography.x509.general_name import RFC822Name
    from sigstore.errors import Error as SigstoreError

    try:
        cert = bundle.signing_certificate
    except (SigstoreError, ValueError):
        return [], None
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
        names += san.get_values_for_type(RFC822Name)
        names += san.get_values_for_type(UniformResourceIdentifier)
    except Exception:  # noqa: BLE001 - a report detail, never a reason to fail
        pass
    issuer = None
    for ext in cert.extensions:
        if ext.oid.dotted_string == OIDC_ISSUER_OID:
            issuer = ext.value.value.decode("utf-8", "replace")
    return names, issuer


def _verifier(config: ClientTrustConfig) -> Verifier:
    from sigstore.errors import Error as SigstoreError
    from sigstore.verify import Verifier

    try:
        return Verifier(trusted_root=config.trusted_root)
    except (SigstoreError, ValueError) as exc:
        raise VerifyError(f"the trust config's trusted root is unusable: {exc}") from None


def verify_bundle(
    data: bytes | str | Bundle,
    digest: str,
    policy: Policy,
    config: ClientTrustConfig,
    *,
    source: str = "bundle",
    payload: bytes | None = None,
    predicate_type: str = statement.COSIGN_SIGN_PREDICATE,
) -> Outcome:
    """Check one bundle for ``digest``. Never raises for a bad signature: it returns the reason.

    A DSSE bundle carries its statement; a message-signature bundle (cosign v2) needs ``payload``,
    the simple-signing payload it signed. ``predicate_type``: what a DSSE statement must be (an
    attestation's type; by default a cosign signature).
    """
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle
    from sigstore.verify.policy import Identity

    try:
        bundle = data if isinstance(data, Bundle) else bundles.parse(data, source)
    except VerifyError as exc:
        return Outcome(source, "unknown", False, exc.message)
    kind = "dsse" if bundle._dsse_envelope is not None else "message-signature"
    names, issuer = signer_of(bundle)

    def failed(reason: str) -> Outcome:
        return Outcome(source, kind, False, reason, names, issuer)

    verifier = _verifier(config)
    identity = Identity(identity=policy.identity, issuer=policy.issuer)
    try:
        if kind == "dsse":
            payload_type, signed = verifier.verify_dsse(bundle, identity)
            check = statement.check_statement(payload_type, signed, digest, predicate_type)
            if check.reason:
                return failed(check.reason)
            signed_at = verified_time(verifier, bundle)
            return Outcome(source, kind, True, None, names, issuer, check.statement, signed_at)
        else:
            if payload is None:
                return failed("a message-signature bundle without the payload it signed")
            verifier.verify_artifact(payload, bundle, identity)
            reason = statement.check_simple_signing(payload, digest)
            if reason:
                return failed(reason)
    except (SigstoreError, ValueError) as exc:
        return failed(_reason(exc))
    return Outcome(source, kind, True, None, names, issuer)


def trusted_by(data: bytes, config: ClientTrustConfig) -> bool:
    """Whether ``config``'s trust root accepts a DSSE bundle, whoever signed it (to tell, among several
    trust configs, which one a rejection by identity or issuer should be reported under)."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.verify.policy import UnsafeNoOp

    try:
        _verifier(config).verify_dsse(bundles.parse(data, "bundle"), UnsafeNoOp())
    except (SigstoreError, ValueError, VerifyError):
        return False
    return True


def verified_time(verifier: Verifier, bundle: Bundle) -> int:
    """When a verified bundle was signed, as far as anyone can prove it: the earliest of its verified
    times, which are a timestamp authority's time and the log's integrated time only when an inclusion
    promise (which verification checked) binds it. A bundle's bare ``integratedTime`` is a number
    anyone can change: sigstore-python ignores it, and so does the order of evidence here."""
    times = verifier._establish_time(bundle)  # noqa: SLF001 - the same rule the verification applied
    return min(int(found.time.timestamp()) for found in times) if times else 0


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0] if len(text) > 400 else text

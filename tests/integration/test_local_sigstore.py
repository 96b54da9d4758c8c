"""Signing and verifying against the local Sigstore instance (Node + @sigstore/mock) and sigstore-js."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sigstore.models import ClientTrustConfig

from pipeline.errors import SignError, ToolError
from pipeline.oci import digests
from pipeline.services import localsigstore
from pipeline.signing import bundles, identity, statement, trust
from pipeline.signing.bundles import SignedDigest
from pipeline.signing.verify import Policy, verify_bundle
from tests.support.sigstore_fixtures import seed_cache, verify_with_sigstore_js

DIGEST = digests.of_bytes(b"an image index")
OTHER_DIGEST = digests.of_bytes(b"another image index")
REPO = "127.0.0.1:5000/kaniko/executor"
SIGNER = "https://ci.example.test/kaniko-pipeline/release"
ISSUER = "https://issuer.example.test"
POLICY = Policy(SIGNER, ISSUER)


@pytest.fixture(scope="module")
def config(local_sigstore: localsigstore.LocalSigstore) -> ClientTrustConfig:
    return trust.load(local_sigstore.trust_config)


@pytest.fixture(scope="module")
def signed(config: ClientTrustConfig) -> Iterator[SignedDigest]:
    token = identity.parse(localsigstore.mint_identity_token(SIGNER, ISSUER), "test")
    with bundles.open_signer(config, token) as signer:
        yield bundles.sign_digest(signer, DIGEST, REPO)


def _tampered(bundle_json: bytes, change: str) -> bytes:
    data = json.loads(bundle_json)
    envelope = data["dsseEnvelope"]
    if change == "signature":
        sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
        sig[-1] ^= 0x01
        envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    elif change == "payload":
        envelope["payload"] = base64.b64encode(statement.cosign_statement(OTHER_DIGEST, REPO)).decode()
    elif change == "certificate":
        cert = bytearray(base64.b64decode(data["verificationMaterial"]["certificate"]["rawBytes"]))
        cert[len(cert) // 2] ^= 0x01
        data["verificationMaterial"]["certificate"]["rawBytes"] = base64.b64encode(bytes(cert)).decode()
    return json.dumps(data).encode()


def test_dsse_round_trip(signed: SignedDigest, config: ClientTrustConfig) -> None:
    data = json.loads(signed.bundle_json)
    assert data["mediaType"] == bundles.BUNDLE_MEDIA_TYPE
    envelope = data["dsseEnvelope"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    payload = json.loads(base64.b64decode(envelope["payload"]))
    assert payload == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": REPO, "digest": {"sha256": digests.encoded(DIGEST)}}],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }
    outcome = verify_bundle(signed.bundle_json, DIGEST, POLICY, config)
    assert outcome.verified, outcome
    assert outcome.kind == "dsse"
    assert outcome.identity == [SIGNER]
    assert outcome.issuer == ISSUER


def test_simple_signing_round_trip(signed: SignedDigest, config: ClientTrustConfig) -> None:
    simple = signed.simple_signing
    assert simple is not None
    assert json.loads(simple.payload) == {
        "critical": {
            "identity": {"docker-reference": REPO},
            "image": {"docker-manifest-digest": DIGEST},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    ok = verify_bundle(simple.bundle, DIGEST, POLICY, config, payload=simple.payload)
    assert ok.verified and ok.kind == "message-signature", ok
    other = statement.simple_signing_payload(REPO, OTHER_DIGEST)
    bad = verify_bundle(simple.bundle, DIGEST, POLICY, config, payload=other)
    assert not bad.verified
    annotations = bundles.cosign_v2_annotations(simple)
    assert base64.b64decode(annotations[bundles.COSIGN_SIGNATURE_ANNOTATION])
    rekor = json.loads(annotations[bundles.COSIGN_BUNDLE_ANNOTATION])
    body = json.loads(base64.b64decode(rekor["Payload"]["body"]))
    assert body["kind"] == "hashedrekord"
    assert annotations[bundles.COSIGN_CERTIFICATE_ANNOTATION].startswith("-----BEGIN CERTIFICATE-----")


def test_another_identity_is_rejected(signed: SignedDigest, config: ClientTrustConfig) -> None:
    outcome = verify_bundle(signed.bundle_json, DIGEST, Policy("https://someone.else", ISSUER), config)
    assert not outcome.verified
    assert outcome.reason and "SAN" in outcome.reason
    assert outcome.identity == [SIGNER]


def test_another_issuer_is_rejected(signed: SignedDigest, config: ClientTrustConfig) -> None:
    outcome = verify_bundle(signed.bundle_json, DIGEST, Policy(SIGNER, "https://other.issuer"), config)
    assert not outcome.verified
    assert outcome.reason and "issuer" in outcome.reason.lower()


def test_bundle_for_another_digest_is_rejected(signed: SignedDigest, config: ClientTrustConfig) -> None:
    outcome = verify_bundle(signed.bundle_json, OTHER_DIGEST, POLICY, config)
    assert not outcome.verified
    assert outcome.reason == f"the statement signs {DIGEST}, not {OTHER_DIGEST}"


@pytest.mark.parametrize("change", ["signature", "payload", "certificate"])
def test_tampered_bundle_is_rejected(signed: SignedDigest, config: ClientTrustConfig, change: str) -> None:
    tampered = _tampered(signed.bundle_json, change)
    for digest in (DIGEST, OTHER_DIGEST):
        outcome = verify_bundle(tampered, digest, POLICY, config)
        assert not outcome.verified, (change, digest)
        assert outcome.reason


def test_garbage_is_rejected_with_a_reason(config: ClientTrustConfig) -> None:
    outcome = verify_bundle(b'{"mediaType": "nonsense"}', DIGEST, POLICY, config, source="sha256-x")
    assert not outcome.verified
    assert outcome.reason and "sha256-x" in outcome.reason


def test_untrusted_root_is_rejected(
    signed: SignedDigest,
    other_sigstore: localsigstore.LocalSigstore,
) -> None:
    other = trust.load(other_sigstore.trust_config)
    outcome = verify_bundle(signed.bundle_json, DIGEST, POLICY, other)
    assert not outcome.verified
    assert outcome.reason


def test_sigstore_js_verifies_the_bundle(
    signed: SignedDigest,
    local_sigstore: localsigstore.LocalSigstore,
    other_sigstore: localsigstore.LocalSigstore,
    sigstore_js: Path,
    tmp_path: Path,
) -> None:
    path = tmp_path / "bundle.json"
    path.write_bytes(signed.bundle_json)
    ok = verify_with_sigstore_js(
        sigstore_js, path, local_sigstore.trust_config, identity=SIGNER, issuer=ISSUER, digest=DIGEST
    )
    assert ok == {
        "verified": True,
        "identity": SIGNER,
        "issuer": ISSUER,
        "payloadType": "application/vnd.in-toto+json",
        "predicateType": statement.COSIGN_SIGN_PREDICATE,
    }
    for kwargs in (
        {"trust_config": other_sigstore.trust_config, "identity": SIGNER, "digest": DIGEST},
        {"trust_config": local_sigstore.trust_config, "identity": "https://x", "digest": DIGEST},
        {"trust_config": local_sigstore.trust_config, "identity": SIGNER, "digest": OTHER_DIGEST},
    ):
        answer = verify_with_sigstore_js(
            sigstore_js,
            path,
            kwargs["trust_config"],  # type: ignore[arg-type]
            identity=str(kwargs["identity"]),
            issuer=ISSUER,
            digest=str(kwargs["digest"]),
        )
        assert answer["verified"] is False and answer["error"], kwargs
    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(_tampered(signed.bundle_json, "signature"))
    answer = verify_with_sigstore_js(
        sigstore_js, tampered, local_sigstore.trust_config, identity=SIGNER, issuer=ISSUER
    )
    assert answer["verified"] is False


def test_sigstore_js_verifies_the_simple_signing_bundle(
    signed: SignedDigest,
    local_sigstore: localsigstore.LocalSigstore,
    sigstore_js: Path,
    tmp_path: Path,
) -> None:
    assert signed.simple_signing is not None
    bundle = tmp_path / "bundle.json"
    bundle.write_text(signed.simple_signing.bundle.to_json())
    payload = tmp_path / "payload.json"
    payload.write_bytes(signed.simple_signing.payload)
    ok = verify_with_sigstore_js(
        sigstore_js, bundle, local_sigstore.trust_config, identity=SIGNER, issuer=ISSUER, artifact=payload
    )
    assert ok["verified"] is True


def test_email_identity(config: ClientTrustConfig) -> None:
    token = identity.parse(
        localsigstore.mint_identity_token("12345", ISSUER, email="maintainer@example.test"), "test"
    )
    with bundles.open_signer(config, token) as signer:
        signed = bundles.sign_digest(signer, DIGEST, simple_signing=False)
    assert signed.simple_signing is None
    assert verify_bundle(
        signed.bundle_json, DIGEST, Policy("maintainer@example.test", ISSUER), config
    ).verified


def test_token_for_another_audience_is_refused(config: ClientTrustConfig) -> None:
    raw = localsigstore.mint_identity_token(SIGNER, ISSUER, audience="something-else")
    with pytest.raises(SignError, match="(?i)audience"):
        identity.parse(raw, "test")


def test_expired_token_is_refused(config: ClientTrustConfig) -> None:
    raw = localsigstore.mint_identity_token(SIGNER, ISSUER, now=1_000_000_000)
    with pytest.raises(SignError, match="expired"):
        identity.parse(raw, "test")


def test_local_instance_refuses_a_real_registry(config: ClientTrustConfig) -> None:
    assert trust.is_local(config)
    trust.check_destination("127.0.0.1:5000", config)
    trust.check_destination("localhost:5000", config)
    with pytest.raises(SignError, match="local Sigstore instance"):
        trust.check_destination("docker.io", config)
    with pytest.raises(SignError):
        trust.check_destination("registry.example.test:5000", config)


def test_missing_node_is_a_tool_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match="invoke setup"):
        localsigstore.start(tmp_path / "cache")


def test_local_fulcio_checks_the_token_claims(local_sigstore: localsigstore.LocalSigstore) -> None:
    import requests

    url = f"{local_sigstore.url}/api/v2/signingCert"
    for token, why in (
        (localsigstore.mint_identity_token(SIGNER, ISSUER, audience="other"), "audience"),
        (localsigstore.mint_identity_token(SIGNER, ISSUER, now=1_000_000_000), "expired"),
        ("not-a-jwt", "not a JWT"),
    ):
        response = requests.post(
            url,
            json={"certificateSigningRequest": "eA=="},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        assert response.status_code == 401, response.text
        assert why in response.json()["message"]
    response = requests.post(url, json={"certificateSigningRequest": "eA=="}, timeout=30)
    assert response.status_code == 401


def test_every_local_signing_session_signs_under_the_one_trust_root_kept_in_the_cache(
    node_cache: Path,  # noqa: F811
    sigstore_js: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A release signs in several sessions (sign, attest, test-result), each starting the local instance;
    the one trust config the report names must verify what each of them signed (issue 21, item 11)."""
    from pipeline.config import Settings
    from pipeline.progress import Silent
    from pipeline.stages import sign

    settings = Settings.load({"cache_dir": str(seed_cache(node_cache, tmp_path / "cache"))}, env={})
    signed: list[tuple[bytes, str]] = []
    paths: list[str | None] = []
    for digest in (DIGEST, OTHER_DIGEST):
        with sign.session(
            settings,
            registries=["127.0.0.1:5000"],
            identity_token=None,
            local=True,
            progress=Silent(),
        ) as (config, token, path):
            with bundles.open_signer(config, token) as signer:
                signed.append((bundles.sign_digest(signer, digest, REPO).bundle_json, digest))
            paths.append(path)
    assert paths[0] == paths[1] == str(tmp_path / "cache" / "sigstore" / "trust_config.json")
    keys = tmp_path / "cache" / "sigstore" / "keys.json"
    assert keys.stat().st_mode & 0o777 == 0o600  # the local CA's private keys: the user's only
    kept = Path(str(paths[0]))
    policy = Policy(localsigstore.LOCAL_IDENTITY, localsigstore.LOCAL_ISSUER)
    for data, digest in signed:
        assert verify_bundle(data, digest, policy, trust.load(kept)).verified
        bundle = tmp_path / f"{digest[7:19]}.json"
        bundle.write_bytes(data)
        answer = verify_with_sigstore_js(
            sigstore_js, bundle, kept, identity=policy.identity, issuer=policy.issuer, digest=digest
        )
        assert answer["verified"], answer  # an independent verifier agrees
    # nothing of the sessions' instances is left behind but the kept keys and trust root
    assert sorted(p.name for p in (tmp_path / "cache" / "sigstore").iterdir()) == [
        "instances",
        "keys.json",
        "trust_config.json",
    ]
    assert not any((tmp_path / "cache" / "sigstore" / "instances").iterdir())

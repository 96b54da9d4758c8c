"""Signing payloads, statement checks, identity tokens and the local-instance rule (no network)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sigstore.models import ClientTrustConfig

from pipeline.errors import ConfigError, ImageError, SignError
from pipeline.oci import digests
from pipeline.services import localsigstore
from pipeline.signing import identity, statement, trust

DIGEST = digests.of_bytes(b"index")
OTHER = digests.of_bytes(b"other")


def test_cosign_statement_is_compact_and_names_the_digest() -> None:
    raw = statement.cosign_statement(DIGEST, "127.0.0.1:5000/kaniko/executor")
    assert b" " not in raw
    assert json.loads(raw) == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "127.0.0.1:5000/kaniko/executor", "digest": {"sha256": digests.encoded(DIGEST)}}
        ],
        "predicateType": "https://sigstore.dev/cosign/sign/v1",
        "predicate": {},
    }
    assert json.loads(statement.cosign_statement(DIGEST))["subject"][0]["name"] == ""


def test_simple_signing_payload_follows_cosign() -> None:
    raw = statement.simple_signing_payload("r.test/kaniko/executor", DIGEST)
    assert raw == (
        b'{"critical":{"identity":{"docker-reference":"r.test/kaniko/executor"},'
        b'"image":{"docker-manifest-digest":"' + DIGEST.encode() + b'"},'
        b'"type":"cosign container image signature"},"optional":null}'
    )
    assert statement.check_simple_signing(raw, DIGEST) is None
    assert statement.check_simple_signing(raw, OTHER) == f"the payload signs {DIGEST}, not {OTHER}"
    assert statement.check_simple_signing(b"[]", DIGEST) is not None


def test_only_sha256_digests_are_signed() -> None:
    with pytest.raises(ImageError):
        statement.cosign_statement("sha256:abc")
    with pytest.raises(Exception, match="sha256"):
        statement.cosign_statement(digests.of_bytes(b"x").replace("sha256", "sha512") + "0" * 64)


@pytest.mark.parametrize(
    ("payload_type", "payload", "reason"),
    [
        ("text/plain", statement.cosign_statement(DIGEST), "payload type"),
        (statement.IN_TOTO_PAYLOAD_TYPE, b"{not json", "not JSON"),
        (statement.IN_TOTO_PAYLOAD_TYPE, b'{"_type": "x"}', "not an in-toto Statement"),
        (
            statement.IN_TOTO_PAYLOAD_TYPE,
            json.dumps(
                {
                    "_type": statement.IN_TOTO_STATEMENT_V1,
                    "subject": [{"name": "", "digest": {"sha256": digests.encoded(DIGEST)}}],
                    "predicateType": "https://slsa.dev/provenance/v1",
                    "predicate": {},
                }
            ).encode(),
            "predicateType",
        ),
        (statement.IN_TOTO_PAYLOAD_TYPE, statement.cosign_statement(OTHER), f"signs {OTHER}"),
    ],
)
def test_statement_checks_say_why(payload_type: str, payload: bytes, reason: str) -> None:
    check = statement.check_statement(payload_type, payload, DIGEST)
    assert check.reason is not None and reason in check.reason


def test_statement_check_passes_for_the_digest() -> None:
    check = statement.check_statement(
        statement.IN_TOTO_PAYLOAD_TYPE, statement.cosign_statement(DIGEST, "repo"), DIGEST
    )
    assert check.reason is None and check.names == ("repo",)


def test_minted_token_parses_as_a_sigstore_identity() -> None:
    token = identity.parse(localsigstore.mint_identity_token("https://me.test", "https://iss.test"), "t")
    assert token.identity == "https://me.test"
    assert token.issuer == "https://iss.test"
    assert token.in_validity_period()


def test_explicit_token_wins_and_env_token_is_read() -> None:
    config = _config("http://127.0.0.1:1")
    raw = localsigstore.mint_identity_token("https://a.test", "https://iss.test")
    env_raw = localsigstore.mint_identity_token("https://b.test", "https://iss.test")
    env = {identity.TOKEN_ENV: env_raw}
    assert identity.acquire(config, token=raw, env=env, interactive=False).identity == "https://a.test"
    assert identity.acquire(config, env=env, interactive=False).identity == "https://b.test"


def test_no_identity_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "CIRCLECI", "GOOGLE_SERVICE_ACCOUNT_NAME"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SignError, match="no identity to sign with"):
        identity.acquire(_config("http://127.0.0.1:1"), env={}, interactive=False)


def test_malformed_token_is_a_clear_error() -> None:
    with pytest.raises(SignError, match="--identity-token"):
        identity.acquire(_config("http://127.0.0.1:1"), token="not-a-jwt", interactive=False)


def _config(service: str) -> ClientTrustConfig:
    start = {"start": "2020-01-01T00:00:00Z"}
    key = {"rawBytes": "AAAA", "keyDetails": "PKIX_ECDSA_P256_SHA_256", "validFor": start}
    return ClientTrustConfig.from_json(
        json.dumps(
            {
                "mediaType": trust.CLIENT_TRUST_CONFIG,
                "trustedRoot": {
                    "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                    "tlogs": [
                        {
                            "baseUrl": service,
                            "hashAlgorithm": "SHA2_256",
                            "publicKey": key,
                            "logId": {"keyId": "AAAA"},
                        }
                    ],
                    "certificateAuthorities": [],
                    "ctlogs": [],
                    "timestampAuthorities": [],
                },
                "signingConfig": {
                    "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                    "caUrls": [{"url": service, "majorApiVersion": 1, "validFor": start, "operator": "t"}],
                    "oidcUrls": [],
                    "rekorTlogUrls": [
                        {"url": service, "majorApiVersion": 1, "validFor": start, "operator": "t"}
                    ],
                    "tsaUrls": [],
                    "rekorTlogConfig": {"selector": "ANY"},
                    "tsaConfig": {"selector": "ANY"},
                },
            }
        )
    )


def test_local_trust_config_signs_only_for_loopback_registries() -> None:
    local = _config("http://127.0.0.1:8080")
    assert trust.is_local(local)
    trust.check_destination("127.0.0.1:5000", local)
    with pytest.raises(SignError, match=r"docker\.io"):
        trust.check_destination("docker.io", local)
    remote = _config("https://fulcio.example.test")
    assert not trust.is_local(remote)
    trust.check_destination("docker.io", remote)
    trust.check_destination("127.0.0.1:5000", remote)


def test_trust_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        trust.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[1]")
    with pytest.raises(ConfigError, match="not a JSON object"):
        trust.load(bad)
    root_only = tmp_path / "root.json"
    root_only.write_text(
        json.dumps({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1"})
    )
    with pytest.raises(ConfigError, match="ClientTrustConfig"):
        trust.load(root_only)


def test_ambient_gitlab_credential_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    # GitLab CI exposes `id_tokens` with `aud: sigstore` as SIGSTORE_ID_TOKEN; sigstore's detector
    # (not our env lookup: env={} here) must find it.
    for name in ("GITHUB_ACTIONS", "GOOGLE_SERVICE_ACCOUNT_NAME", "BUILDKITE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITLAB_CI", "true")
    raw = localsigstore.mint_identity_token(
        "project_path:team/kaniko:ref_type:branch:ref:main", "https://gl.test"
    )
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", raw)
    token = identity.acquire(_config("http://127.0.0.1:1"), env={}, interactive=False)
    assert token.issuer == "https://gl.test"
    monkeypatch.setenv("SIGSTORE_ID_TOKEN", localsigstore.mint_identity_token(audience="not-sigstore"))
    with pytest.raises(SignError, match="OIDC credential"):
        identity.acquire(_config("http://127.0.0.1:1"), env={}, interactive=False)

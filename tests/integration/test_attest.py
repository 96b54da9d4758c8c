"""Attestations (cosign v3 `attest`) in a real distribution registry, signed by the local Sigstore
instance, read back by our verifier and by sigstore-js."""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sigstore.models import ClientTrustConfig

from pipeline.errors import RegistryError, VerifyError
from pipeline.evidence.testresult import TEST_RESULT, predicate, release_descriptor
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.manifest import Index, parse
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.registry.referrers import fallback_tag
from pipeline.release import attestations
from pipeline.release.binding import SignatureChecks, Subject
from pipeline.release.signer import Signing
from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from pipeline.signing import attach, bundles, trust
from pipeline.signing.verify import Policy
from pipeline.stages import attest, verify_images
from tests.support.cli import invoke_with_cache
from tests.support.layouts import push_index
from tests.support.sigstore_fixtures import ISSUER, SIGNER, identity_token, verify_with_sigstore_js

RELEASE = Subject("1.2.3", "v1.2.3", "c" * 40)
CONFIGURATION = [
    {"name": "smoke-image", "uri": "registry.test/nginx@sha256:" + "a" * 64},
    release_descriptor(RELEASE.version, RELEASE.tag, RELEASE.commit),
]


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(credentials=Credentials.anonymous()) as c:
        yield c


@pytest.fixture(scope="module")
def config(local_sigstore: localsigstore.LocalSigstore) -> ClientTrustConfig:
    return trust.load(local_sigstore.trust_config)


def _attest(
    client: Client, config: ClientTrustConfig, repo: Reference, digest: str, passed: bool
) -> attest.Attested:
    body = predicate([("smoke/answers", True), ("smoke/welcome-page", passed)], CONFIGURATION)
    claim = attest.Claim(repo, digest, TEST_RESULT, body)
    [done] = attest.attest([claim], client=client, config=config, token=identity_token())
    return done


def test_a_test_result_is_attached_as_cosign_attest_does_and_verifies_independently(
    registry: LocalRegistry,
    client: Client,
    config: ClientTrustConfig,
    local_sigstore: localsigstore.LocalSigstore,
    sigstore_js: Path,
    tmp_path: Path,
) -> None:
    repo = Reference.parse(f"{registry.host}/team/attested")
    index = push_index(client, repo)
    done = _attest(client, config, repo, index.digest, passed=True)
    assert done.digest == index.digest and done.bytes > 1000

    # the referrer manifest is what cosign v3 `attest` writes
    data, _ = client.get_manifest(repo.with_digest(done.referrer))
    artifact = json.loads(data)
    assert artifact["artifactType"] == bundles.BUNDLE_MEDIA_TYPE
    assert artifact["config"]["mediaType"] == mediatype.OCI_EMPTY
    created = artifact["annotations"].pop("org.opencontainers.image.created")  # as the bundle spec says
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created)
    assert artifact["annotations"] == {
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": TEST_RESULT,
    }
    assert artifact["subject"]["digest"] == index.digest
    # the registry has no referrers API: the fallback tag lists it
    tagged, _ = client.get_manifest(repo.with_tag(fallback_tag(index.digest)))
    assert [d["digest"] for d in json.loads(tagged)["manifests"]] == [done.referrer]

    found = attest.verify(
        repo.with_tag("latest"), TEST_RESULT, client=client, policy=Policy(SIGNER, ISSUER), configs=[config]
    )
    assert found.verified, found.explain()
    assert found.predicate is not None and found.predicate["result"] == "PASSED"
    assert found.predicate["passedTests"] == ["smoke/answers", "smoke/welcome-page"]
    assert found.to_dict()["referrer"] == done.referrer

    # an attestation is not a signature: the image is still unsigned
    unsigned = verify_images.verify(
        repo.with_tag("latest"), client=client, policy=Policy(SIGNER, ISSUER), config=config
    )
    assert not unsigned.verified and unsigned.outcomes == []
    # nor is it an attestation of another type
    sbom = attest.verify(
        repo, attest.SPDX_DOCUMENT, client=client, policy=Policy(SIGNER, ISSUER), configs=[config]
    )
    assert not sbom.verified and "no https://spdx.dev/Document attestation" in sbom.explain()

    # another identity: rejected, and the reason names the mismatch
    other = attest.verify(
        repo, TEST_RESULT, client=client, policy=Policy("https://someone.else/ci", ISSUER), configs=[config]
    )
    assert not other.verified and other.predicate is None
    assert "do not match https://someone.else/ci" in str(other.outcomes[0].reason)

    # sigstore-js accepts the bundle as pulled from the registry, and sees its predicate type
    [pulled] = attach.find_bundles(client, repo, index.digest)
    assert pulled.data is not None
    path = tmp_path / "test-result.bundle.json"
    path.write_bytes(pulled.data)
    answer = verify_with_sigstore_js(
        sigstore_js, path, local_sigstore.trust_config, identity=SIGNER, issuer=ISSUER, digest=index.digest
    )
    assert answer["verified"] is True and answer["predicateType"] == TEST_RESULT


def test_reading_trusts_no_descriptor_and_refuses_a_tampered_predicate(
    registry: LocalRegistry, client: Client, config: ClientTrustConfig
) -> None:
    repo = Reference.parse(f"{registry.host}/team/fallback")
    index = push_index(client, repo, seed="fallback")
    done = _attest(client, config, repo, index.digest, passed=True)
    # cosign's fallback writer: artifactType from the config media type, annotations dropped
    tag = repo.with_tag(fallback_tag(index.digest))
    data, _ = client.get_manifest(tag)
    listed = parse(data)
    assert isinstance(listed, Index)
    stripped = [
        Descriptor(d.media_type, d.digest, d.size, artifact_type=mediatype.OCI_EMPTY)
        for d in listed.manifests
    ]
    client.put_manifest(tag, Index(manifests=stripped).to_bytes(), mediatype.OCI_INDEX)
    policy = Policy(SIGNER, ISSUER)
    found = attest.verify(repo, TEST_RESULT, client=client, policy=policy, configs=[config])
    assert found.verified and found.to_dict()["referrer"] == done.referrer

    # a tampered predicate (PASSED turned FAILED, same signature): rejected with a reason
    [pulled] = attach.find_bundles(client, repo, index.digest)
    assert pulled.data is not None
    bundle = json.loads(pulled.data)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"]["passedTests"] = []
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    forged = json.dumps(bundle).encode()
    client.upload_blob(repo, forged)
    subject = client.head_manifest(repo.with_digest(index.digest))
    assert subject is not None
    attach.attach_bundle(client, repo, subject, forged, TEST_RESULT)
    found = attest.verify(repo, TEST_RESULT, client=client, policy=policy, configs=[config])
    rejected = [o for o in found.outcomes if not o.verified]
    assert len(found.outcomes) == 2 and len(rejected) == 1
    assert rejected[0].reason and "signature" in rejected[0].reason.lower()
    assert found.predicate is not None and found.predicate["passedTests"]  # the genuine one


def test_the_latest_result_decides_and_a_failed_one_stops_the_rolling_tags(
    registry: LocalRegistry,
    client: Client,
    config: ClientTrustConfig,
    local_sigstore: localsigstore.LocalSigstore,
) -> None:
    repo = Reference.parse(f"{registry.host}/team/latest")
    index = push_index(client, repo, seed="latest")
    signing = Signing(False, SIGNER, ISSUER, str(local_sigstore.trust_config))
    trusted = SignatureChecks(
        client, trust.Trust(signing.policy, ((str(local_sigstore.trust_config), config),))
    )
    assert attestations.latest_result(trusted, repo.repo_str, index.digest, RELEASE) is None
    with pytest.raises(VerifyError, match="latest test result from .* is missing, not PASSED") as missing:
        attestations.require_passed(trusted, repo.repo_str, index.digest, RELEASE)
    assert "rolling tags were not moved" in str(missing.value)

    _attest(client, config, repo, index.digest, passed=True)
    assert attestations.latest_result(trusted, repo.repo_str, index.digest, RELEASE) == "PASSED"
    attestations.require_passed(trusted, repo.repo_str, index.digest, RELEASE)
    time.sleep(1.1)  # the verified times have a resolution of one second
    _attest(client, config, repo, index.digest, passed=False)
    assert attestations.latest_result(trusted, repo.repo_str, index.digest, RELEASE) == "FAILED"
    with pytest.raises(VerifyError, match="is FAILED, not PASSED"):
        attestations.require_passed(trusted, repo.repo_str, index.digest, RELEASE)
    # a PASSED result from someone else changes nothing
    foreign = predicate([("smoke/answers", True)], CONFIGURATION)
    attest.attest(
        [attest.Claim(repo, index.digest, TEST_RESULT, foreign)],
        client=client,
        config=config,
        token=identity_token(subject="https://someone.else/ci"),
    )
    assert attestations.latest_result(trusted, repo.repo_str, index.digest, RELEASE) == "FAILED"


def test_invoke_verify_type_prints_the_predicate_and_refuses_clearly(
    registry: LocalRegistry,
    client: Client,
    config: ClientTrustConfig,
    local_sigstore: localsigstore.LocalSigstore,
    tmp_path: Path,
) -> None:
    repo = Reference.parse(f"{registry.host}/team/cli")
    index = push_index(client, repo, seed="cli")
    _attest(client, config, repo, index.digest, passed=True)
    cache = tmp_path / "cache"
    cache.mkdir()
    common = ["--certificate-oidc-issuer", ISSUER, "--trust-config", str(local_sigstore.trust_config)]

    def verify(
        image: str, kind: str, identity: str = SIGNER, *extra: str
    ) -> subprocess.CompletedProcess[str]:
        args = [
            "verify",
            "--image",
            image,
            "--type",
            kind,
            "--certificate-identity",
            identity,
            *common,
            *extra,
        ]
        return invoke_with_cache(args, cache)

    found = verify(f"{repo.repo_str}:latest", "test-result", SIGNER, "--json")
    assert found.returncode == 0, found.stderr
    data = json.loads(found.stdout)
    assert data["verified"] and data["digest"] == index.digest
    assert data["predicate"]["result"] == "PASSED" and data["predicate"]["configuration"] == CONFIGURATION
    human = verify(f"{repo.repo_str}@{index.digest}", "test-result")
    assert human.returncode == 0 and "its predicate:" in human.stdout and '"result": "PASSED"' in human.stdout

    wrong = verify(f"{repo.repo_str}:latest", "test-result", "https://someone.else/ci")
    assert wrong.returncode == 1 and "do not match https://someone.else/ci" in wrong.stdout + wrong.stderr
    missing = verify(f"{repo.repo_str}:latest", "provenance")
    assert missing.returncode == 1
    assert "no https://slsa.dev/provenance/v1 attestation is attached" in missing.stdout + missing.stderr
    bogus = verify(f"{repo.repo_str}:latest", "bogus")
    assert bogus.returncode == 2 and "unknown attestation type 'bogus'" in bogus.stderr
    for result in (found, human, wrong, missing, bogus):
        assert "Traceback" not in result.stderr


def test_an_unreachable_registry_is_a_registry_error_naming_it() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    ref = Reference.parse(f"127.0.0.1:{port}/team/cli:latest")
    with (
        Client(credentials=Credentials.anonymous(), deadline=3) as client,
        pytest.raises(RegistryError) as error,
    ):
        attest.verify(ref, TEST_RESULT, client=client, policy=Policy(SIGNER, ISSUER), configs=[])
    assert f"127.0.0.1:{port}" in str(error.value)


def _replayed_later(data: bytes, later: int) -> bytes:
    """A genuine bundle with its inclusion promise stripped and a later integratedTime: it still
    verifies (its timestamp authority's timestamp carries it), and its log time is now unauthenticated."""
    bundle = json.loads(data)
    [entry] = bundle["verificationMaterial"]["tlogEntries"]
    assert "inclusionPromise" in entry and bundle["verificationMaterial"]["timestampVerificationData"]
    del entry["inclusionPromise"]
    entry["integratedTime"] = str(later)
    return json.dumps(bundle).encode()


def test_evidence_is_ordered_by_verified_time_so_a_replayed_passed_result_never_outranks_a_failed_one(
    registry: LocalRegistry, client: Client, config: ClientTrustConfig
) -> None:
    repo = Reference.parse(f"{registry.host}/team/replayed")
    index = push_index(client, repo, seed="replayed")
    policy = Policy(SIGNER, ISSUER)
    passed = _attest(client, config, repo, index.digest, passed=True)
    time.sleep(1.1)  # the verified times have a resolution of one second
    _attest(client, config, repo, index.digest, passed=False)
    genuine = next(b for b in attach.find_bundles(client, repo, index.digest) if b.source == passed.referrer)
    assert genuine.data is not None

    # A registry writer replays the old PASSED bundle, claiming the log took it an hour later.
    forged = _replayed_later(genuine.data, int(time.time()) + 3600)
    subject = client.head_manifest(repo.with_digest(index.digest))
    assert subject is not None
    replayed = attach.attach_bundle(client, repo, subject, forged, TEST_RESULT)

    found = attest.verify(repo, TEST_RESULT, client=client, policy=policy, configs=[config])
    by_source = {o.source: o for o in found.outcomes}
    assert len(found.outcomes) == 3 and all(o.verified for o in found.outcomes)  # it still verifies...
    assert by_source[replayed.digest].signed_at == by_source[passed.referrer].signed_at  # ...at its TSA time
    assert found.predicate is not None and found.predicate["result"] == "FAILED", found.to_dict()

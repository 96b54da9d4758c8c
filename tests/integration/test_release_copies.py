"""The release copies to its other registries only the signatures that verify as its own (issue 21,
item 7): a stranger's bundle, a tampered attestation and a stranger's `.sig` layer in the primary stay
there. Real distribution registry, local Sigstore instance."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from sigstore.models import ClientTrustConfig

from pipeline.evidence.testresult import TEST_RESULT, predicate
from pipeline.oci.manifest import Manifest, parse
from pipeline.progress import Silent
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.release.binding import SignatureChecks
from pipeline.release.registries import Destinations
from pipeline.release.signer import Signing
from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from pipeline.signing import attach, trust
from pipeline.signing.bundles import COSIGN_CERTIFICATE_ANNOTATION
from pipeline.stages import attest, sign
from pipeline.stages.publish import PublishedImage
from tests.support.layouts import push_index
from tests.support.sigstore_fixtures import ISSUER, SIGNER, identity_token

STRANGER = "https://someone.else/ci"


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(credentials=Credentials.anonymous()) as c:
        yield c


def _sig_certificates(client: Client, repo: Reference, digest: str) -> list[str]:
    data, desc = client.get_manifest(repo.with_tag(attach.signature_tag(digest)))
    manifest = parse(data, desc.media_type)
    assert isinstance(manifest, Manifest)
    return [layer.annotations[COSIGN_CERTIFICATE_ANNOTATION] for layer in manifest.layers]


def _tampered(data: bytes) -> bytes:
    bundle = json.loads(data)
    envelope = bundle["dsseEnvelope"]
    body = json.loads(base64.b64decode(envelope["payload"]))
    body["predicate"]["result"] = "PASSED"
    envelope["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    return json.dumps(bundle).encode()


def test_only_the_releases_own_verified_bundles_and_sig_layers_are_copied_to_the_other_registries(
    registry: LocalRegistry,
    client: Client,
    local_sigstore: localsigstore.LocalSigstore,
) -> None:
    config: ClientTrustConfig = trust.load(local_sigstore.trust_config)
    primary = Reference.parse(f"{registry.host}/kaniko-executor")
    index = push_index(client, primary, seed="copies")
    other = Destinations([f"{registry.host}/mirror"], "1.2.3", ["executor"])
    push_index(client, Reference.parse(f"{registry.host}/mirror/kaniko-executor"), seed="copies")

    target = [sign.Target("executor", primary, index.digest)]
    mine = sign.sign(target, client=client, config=config, token=identity_token())
    sign.sign(target, client=client, config=config, token=identity_token(subject=STRANGER))  # a writer's own
    failed = predicate([("smoke/answers", False)], [{"name": "smoke-image", "uri": "x"}])
    [result] = attest.attest(
        [attest.Claim(primary, index.digest, TEST_RESULT, failed)],
        client=client,
        config=config,
        token=identity_token(),
    )
    genuine = next(
        b for b in attach.find_bundles(client, primary, index.digest) if b.source == result.referrer
    )
    assert genuine.data is not None
    subject = client.head_manifest(primary.with_digest(index.digest))
    assert subject is not None
    attach.attach_bundle(client, primary, subject, _tampered(genuine.data), TEST_RESULT)  # FAILED made PASSED
    assert len(attach.find_bundles(client, primary, index.digest)) == 4
    assert len(_sig_certificates(client, primary, index.digest)) == 2

    signing = Signing(False, SIGNER, ISSUER, str(local_sigstore.trust_config))
    trusted = SignatureChecks(
        client, trust.Trust(signing.policy, ((str(local_sigstore.trust_config), config),))
    )
    published = PublishedImage("executor", primary.repo_str, index.digest, ["v1.2.3"], "1.2.3")
    other.copy_signatures(trusted, {"executor": published}, Silent())

    copied = Reference.parse(f"{registry.host}/mirror/kaniko-executor")
    assert not other.extra[0].failed, other.extra[0].error
    found = attach.find_bundles(client, copied, index.digest)
    assert sorted(f.data for f in found if f.data) == sorted(  # type: ignore[type-var]
        b.data
        for b in attach.find_bundles(client, primary, index.digest)
        if b.source in (mine.signed[0].referrer, result.referrer)
    )
    # the .sig image there holds this signer's layer only
    assert (
        _sig_certificates(client, copied, index.digest)
        == _sig_certificates(client, primary, index.digest)[:1]
    )

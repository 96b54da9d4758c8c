"""Issue 15 items 6 and 7: sign only what was published, and check the signer before attaching.

The real distribution registry behind the fault proxy, and the local Sigstore instance. After a refused
signing the registry holds nothing new: no referrers index (``sha256-<hex>`` tag) and no cosign v2
``.sig`` tag for any digest.
"""

from __future__ import annotations

import pytest
import requests
from sigstore.models import ClientTrustConfig

from pipeline.errors import SignError
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from pipeline.signing import trust
from pipeline.signing.verify import Policy
from pipeline.stages import sign
from tests.support.faultproxy import FaultProxy
from tests.support.layouts import push_index
from tests.support.sigstore_fixtures import ISSUER, SIGNER, identity_token

FORGED = "sha256:" + "f" * 64


@pytest.fixture(scope="module")
def config(local_sigstore: localsigstore.LocalSigstore) -> ClientTrustConfig:
    return trust.load(local_sigstore.trust_config)


def _tags(registry: LocalRegistry, repository: str) -> list[str]:
    answer = requests.get(f"{registry.url}/v2/{repository}/tags/list", timeout=10).json()
    return sorted(answer.get("tags") or [])


def test_a_registry_that_answers_for_another_digest_gets_nothing_signed(
    registry: LocalRegistry, fault_proxy: FaultProxy, config: ClientTrustConfig
) -> None:
    with Client(credentials=Credentials.anonymous()) as direct:
        repo = Reference.parse(f"{registry.host}/sig/app")
        index = push_index(direct, repo)
    before = _tags(registry, "sig/app")
    # Through the proxy, the manifest HEAD answers Docker-Content-Digest: <another digest>.
    fault_proxy.rewrite_header("Docker-Content-Digest", FORGED, method="HEAD", path=r"/manifests/", times=99)
    proxied = Reference.parse(f"{fault_proxy.host}/sig/app")
    target = sign.Target("executor", proxied, index.digest)
    with Client(credentials=Credentials.anonymous()) as client, pytest.raises(SignError) as info:
        sign.sign([target], client=client, config=config, token=identity_token())
    assert f"asked to sign {proxied.repo_str}@{index.digest}" in info.value.message
    assert f"with the digest {FORGED}" in info.value.message and "nothing was signed" in info.value.message
    assert fault_proxy.count("HEAD") >= 1 and fault_proxy.faults[0].fired >= 1
    assert _tags(registry, "sig/app") == before  # no sha256-<hex> referrers index, no .sig tag


def test_a_wrong_signing_identity_is_refused_before_anything_is_attached(
    registry: LocalRegistry, config: ClientTrustConfig
) -> None:
    with Client(credentials=Credentials.anonymous()) as client:
        repo = Reference.parse(f"{registry.host}/sig/who")
        index = push_index(client, repo)
        before = _tags(registry, "sig/who")
        target = sign.Target("executor", repo, index.digest)
        # The token is SIGNER's; the release expects another identity, and another issuer.
        for expected, named in (
            (Policy("https://ci.example.test/someone-else", ISSUER), SIGNER),
            (Policy(SIGNER, "https://other-issuer.example.test"), ISSUER),
        ):
            with pytest.raises(SignError) as info:
                sign.sign([target], client=client, config=config, token=identity_token(), expected=expected)
            assert named in info.value.message and "nothing was attached" in info.value.message
            assert _tags(registry, "sig/who") == before
        # The right identity signs; the certificate was checked and the bundle attached.
        result = sign.sign(
            [target], client=client, config=config, token=identity_token(), expected=Policy(SIGNER, ISSUER)
        )
        assert [s.digest for s in result.signed] == [index.digest]
        assert "sha256-" + index.digest.split(":", 1)[1] in _tags(registry, "sig/who")


def test_the_certificate_is_checked_not_only_the_token(
    registry: LocalRegistry, config: ClientTrustConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token that claims the expected identity but a certificate that names another: refused."""
    with Client(credentials=Credentials.anonymous()) as client:
        repo = Reference.parse(f"{registry.host}/sig/cert")
        index = push_index(client, repo)
        before = _tags(registry, "sig/cert")
        token = identity_token()  # the certificate Fulcio issues names SIGNER
        monkeypatch.setattr(type(token), "identity", property(lambda self: "https://ci.example.test/claimed"))
        target = sign.Target("executor", repo, index.digest)
        expected = Policy("https://ci.example.test/claimed", ISSUER)
        with pytest.raises(SignError) as info:
            sign.sign([target], client=client, config=config, token=token, expected=expected)
        assert "the signing certificate names" in info.value.message and SIGNER in info.value.message
        assert _tags(registry, "sig/cert") == before

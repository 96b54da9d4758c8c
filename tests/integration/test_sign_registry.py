"""Signing published images and verifying them in a real distribution registry (no referrers API)."""

from __future__ import annotations

import datetime
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sigstore.models import ClientTrustConfig

from pipeline.errors import SignError
from pipeline.oci import digests, mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.manifest import Index, Manifest, parse
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.registry.referrers import fallback_tag
from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from pipeline.signing import attach, bundles, trust
from pipeline.signing.verify import Policy
from pipeline.stages import sign, verify_images
from tests.support.cli import invoke_with_cache, run_invoke
from tests.support.layouts import push_index
from tests.support.sigstore_fixtures import (
    ISSUER,
    SIGNER,
    identity_token,
    seed_cache,
    verify_with_sigstore_js,
)


@pytest.fixture
def client() -> Iterator[Client]:
    with Client(credentials=Credentials.anonymous()) as c:
        yield c


@pytest.fixture(scope="module")
def config(local_sigstore: localsigstore.LocalSigstore) -> ClientTrustConfig:
    return trust.load(local_sigstore.trust_config)


def _repo(registry: LocalRegistry, name: str = "team/kaniko-executor") -> Reference:
    return Reference.parse(f"{registry.host}/{name}")


def test_sign_find_verify(
    registry: LocalRegistry,
    client: Client,
    config: ClientTrustConfig,
    local_sigstore: localsigstore.LocalSigstore,
    sigstore_js: Path,
    tmp_path: Path,
) -> None:
    repo = _repo(registry)
    index = push_index(client, repo)
    result = sign.sign(
        [sign.Target("executor", repo, index.digest)],
        client=client,
        config=config,
        token=identity_token(),
    )
    assert [s.digest for s in result.signed] == [index.digest]
    assert result.identity == SIGNER and result.issuer == ISSUER

    verified = verify_images.verify(
        repo.with_tag("latest"), client=client, policy=Policy(SIGNER, ISSUER), config=config
    )
    assert verified.verified, verified.explain()
    assert verified.digest == index.digest
    assert [o.verified for o in verified.outcomes] == [True]
    assert verified.outcomes[0].source == result.signed[0].referrer
    assert verified.to_dict()["verified"] is True
    assert verified.to_dict()["cosign_v2_sig"]["layers"] == 1
    assert "cosign v2 signature tag" in verified.explain()

    for policy in (Policy("https://someone.else", ISSUER), Policy(SIGNER, "https://other.issuer")):
        rejected = verify_images.verify(repo.with_tag("latest"), client=client, policy=policy, config=config)
        assert not rejected.verified
        assert rejected.outcomes[0].reason
        assert "rejected" in rejected.explain()

    # The independent verifier accepts the bundle as pulled from the registry.
    found = attach.find_bundles(client, repo, index.digest)
    assert len(found) == 1 and found[0].data is not None
    path = tmp_path / "pulled.bundle.json"
    path.write_bytes(found[0].data)
    answer = verify_with_sigstore_js(
        sigstore_js, path, local_sigstore.trust_config, identity=SIGNER, issuer=ISSUER, digest=index.digest
    )
    assert answer["verified"] is True

    # The artifact manifest is what cosign v3 writes.
    data, _ = client.get_manifest(repo.with_digest(found[0].source))
    artifact = json.loads(data)
    assert artifact["artifactType"] == bundles.BUNDLE_MEDIA_TYPE
    assert artifact["config"] == {
        "mediaType": mediatype.OCI_EMPTY,
        "digest": mediatype.EMPTY_DIGEST,
        "size": 2,
    }
    assert [layer["mediaType"] for layer in artifact["layers"]] == [bundles.BUNDLE_MEDIA_TYPE]
    created = artifact["annotations"].pop("org.opencontainers.image.created")  # as the bundle spec says
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", created)
    assert artifact["annotations"] == {
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": "https://sigstore.dev/cosign/sign/v1",
    }
    assert artifact["subject"] == {
        "mediaType": mediatype.OCI_INDEX,
        "digest": index.digest,
        "size": index.size,
    }

    # And the cosign v2 .sig image is there with one simple-signing layer.
    sig, _ = client.get_manifest(repo.with_tag(attach.signature_tag(index.digest)))
    layers = json.loads(sig)["layers"]
    assert len(layers) == 1
    layer = layers[0]
    assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    assert set(layer["annotations"]) >= {
        bundles.COSIGN_SIGNATURE_ANNOTATION,
        bundles.COSIGN_BUNDLE_ANNOTATION,
    }
    payload = json.loads(client.get_blob(repo, layer["digest"]))
    assert payload["critical"]["image"]["docker-manifest-digest"] == index.digest
    assert payload["critical"]["identity"]["docker-reference"] == repo.repo_str


def test_image_without_signature(registry: LocalRegistry, client: Client, config: ClientTrustConfig) -> None:
    repo = _repo(registry)
    index = push_index(client, repo)
    result = verify_images.verify(
        repo.with_tag("latest"), client=client, policy=Policy(SIGNER, ISSUER), config=config
    )
    assert not result.verified
    assert result.outcomes == []
    assert result.sig_tag is None
    assert result.digest == index.digest
    assert "no signature bundle" in result.explain()


def test_untrusted_root_fails_verification(
    registry: LocalRegistry,
    client: Client,
    config: ClientTrustConfig,
    other_sigstore: localsigstore.LocalSigstore,
) -> None:
    repo = _repo(registry)
    index = push_index(client, repo)
    sign.sign(
        [sign.Target("executor", repo, index.digest)],
        client=client,
        config=config,
        token=identity_token(),
    )
    other = trust.load(other_sigstore.trust_config)
    result = verify_images.verify(
        repo.with_tag("latest"), client=client, policy=Policy(SIGNER, ISSUER), config=other
    )
    assert not result.verified
    assert len(result.outcomes) == 1 and result.outcomes[0].reason


def _foreign_referrer(client: Client, repo: Reference, subject: Descriptor) -> Descriptor:
    """An SBOM artifact attached by 'another tool' straight into the fallback index."""
    sbom = b'{"spdxVersion": "SPDX-2.3"}'
    client.upload_blob(repo, sbom)
    client.upload_blob(repo, mediatype.EMPTY_JSON)
    artifact = Manifest(
        config=Descriptor(mediatype.OCI_EMPTY, mediatype.EMPTY_DIGEST, 2),
        layers=[Descriptor("application/spdx+json", digests.of_bytes(sbom), len(sbom))],
        annotations={"org.example.tool": "sbom-writer"},
        subject=subject,
        artifact_type="application/spdx+json",
    )
    data = artifact.to_bytes()
    client.put_manifest(repo.with_digest(digests.of_bytes(data)), data, artifact.media_type)
    desc = Descriptor(
        artifact.media_type,
        digests.of_bytes(data),
        len(data),
        annotations=dict(artifact.annotations),
        artifact_type=artifact.artifact_type,
    )
    index = Index(manifests=[desc])
    client.put_manifest(repo.with_tag(fallback_tag(subject.digest)), index.to_bytes(), index.media_type)
    return desc


def test_signing_twice_keeps_one_entry_per_bundle_and_others_entries(
    registry: LocalRegistry, client: Client, config: ClientTrustConfig
) -> None:
    repo = _repo(registry)
    index = push_index(client, repo)
    foreign = _foreign_referrer(client, repo, index)
    target = [sign.Target("executor", repo, index.digest)]
    first = sign.sign(target, client=client, config=config, token=identity_token())
    second = sign.sign(target, client=client, config=config, token=identity_token())
    # Re-attaching the very same bundle must not add an entry either.
    found = attach.find_bundles(client, repo, index.digest)
    again = attach.attach_bundle(client, repo, index, next(f.data for f in found if f.data))

    raw, desc = client.get_manifest(repo.with_tag(fallback_tag(index.digest)))
    assert desc.media_type == mediatype.OCI_INDEX
    doc = json.loads(raw)
    assert doc["schemaVersion"] == 2 and doc["mediaType"] == mediatype.OCI_INDEX
    entries = doc["manifests"]
    listed = [entry["digest"] for entry in entries]
    assert len(listed) == len(set(listed)), "duplicate entries in the referrers index"
    mine = {first.signed[0].referrer, second.signed[0].referrer}
    assert len(mine) == 2 and again.digest in mine
    assert set(listed) == mine | {foreign.digest}
    for entry in entries:
        artifact_raw, _ = client.get_manifest(repo.with_digest(entry["digest"]))
        artifact = json.loads(artifact_raw)
        # OCI 1.1: artifactType and every annotation of the artifact pulled up into the descriptor.
        assert entry["mediaType"] == artifact["mediaType"] == mediatype.OCI_MANIFEST
        assert entry["size"] == len(artifact_raw)
        assert entry["artifactType"] == artifact["artifactType"]
        assert entry.get("annotations", {}) == artifact.get("annotations", {})
        assert artifact["subject"]["digest"] == index.digest

    # Both signatures verify; the .sig image holds one layer for this signer, not two.
    result = verify_images.verify(
        repo.with_digest(index.digest), client=client, policy=Policy(SIGNER, ISSUER), config=config
    )
    assert [o.verified for o in result.outcomes] == [True, True]
    sig, _ = client.get_manifest(repo.with_tag(attach.signature_tag(index.digest)))
    assert len(json.loads(sig)["layers"]) == 1

    # Another signer's v2 signature is added beside it, and survives our next signing.
    sign.sign(target, client=client, config=config, token=identity_token("https://other.signer.test"))
    sign.sign(target, client=client, config=config, token=identity_token())
    sig, _ = client.get_manifest(repo.with_tag(attach.signature_tag(index.digest)))
    manifest = parse(sig)
    assert isinstance(manifest, Manifest) and len(manifest.layers) == 2
    config_blob = json.loads(client.get_blob(repo, manifest.config.digest))
    assert config_blob["rootfs"]["diff_ids"] == [layer.digest for layer in manifest.layers]


def test_the_same_bundle_attached_a_second_later_is_the_same_referrer(
    registry: LocalRegistry, client: Client, config: ClientTrustConfig
) -> None:
    """The referrer of a bundle is made of the bundle alone: attached again a second later (what signing
    twice and a release's copies do), it is the same manifest, and the referrers index lists it once. Its
    created annotation is when the bundle was logged, not when it was attached (issue: the wall clock's
    second made two referrers of one bundle, and test_signing_twice_... failed when the two attachments
    fell in two seconds)."""
    repo = _repo(registry)
    index = push_index(client, repo)
    signed = sign.sign(
        [sign.Target("executor", repo, index.digest)], client=client, config=config, token=identity_token()
    )
    first = signed.signed[0].referrer
    found = attach.find_bundles(client, repo, index.digest)
    data = next(f.data for f in found if f.data)
    time.sleep(1.1)  # into the next second, at least
    again = attach.attach_bundle(client, repo, index, data)
    assert again.digest == first
    raw, _ = client.get_manifest(repo.with_tag(fallback_tag(index.digest)))
    assert [entry["digest"] for entry in json.loads(raw)["manifests"]] == [first]
    artifact = json.loads(client.get_manifest(repo.with_digest(first))[0])
    logged = int(json.loads(data)["verificationMaterial"]["tlogEntries"][0]["integratedTime"])
    created = datetime.datetime.fromtimestamp(logged, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert artifact["annotations"]["org.opencontainers.image.created"] == created


def test_per_platform_signs_each_manifest(
    registry: LocalRegistry, client: Client, config: ClientTrustConfig
) -> None:
    repo = _repo(registry, "team/kaniko-warmer")
    index = push_index(client, repo, seed="warmer")
    result = sign.sign(
        [sign.Target("warmer", repo, index.digest)],
        client=client,
        config=config,
        token=identity_token(),
        per_platform=True,
        simple_signing=False,
    )
    assert [s.platform for s in result.signed] == [None, "linux/amd64", "linux/arm64"]
    assert all(s.sig_tag is None for s in result.signed)
    for signed in result.signed[1:]:
        outcome = verify_images.verify(
            repo.with_digest(signed.digest), client=client, policy=Policy(SIGNER, ISSUER), config=config
        )
        assert outcome.verified, outcome.explain()
    assert client.find_manifest(repo.with_tag(attach.signature_tag(index.digest))) is None


def test_local_instance_never_signs_for_a_real_registry(client: Client, config: ClientTrustConfig) -> None:
    target = sign.Target(
        "executor", Reference.parse("docker.io/someone/kaniko-executor"), digests.of_bytes(b"x")
    )
    with pytest.raises(SignError, match="local Sigstore instance"):
        sign.sign([target], client=client, config=config, token=identity_token())


def test_invoke_sign_and_verify(
    registry: LocalRegistry,
    client: Client,
    node_cache: Path,
    tmp_path: Path,
) -> None:
    repo = _repo(registry)
    index = push_index(client, repo)
    cache = seed_cache(node_cache, tmp_path / "cache")
    (cache / "runs").mkdir()
    record = {
        "publish": {
            "images": {"executor": {"repository": repo.repo_str, "digest": index.digest, "tags": ["latest"]}}
        }
    }
    (cache / "runs" / "last.json").write_text(json.dumps(record))

    signed = invoke_with_cache(["sign", "--local-sigstore", "--json"], cache)
    assert signed.returncode == 0, signed.stderr
    out = json.loads(signed.stdout)
    assert [s["digest"] for s in out["signatures"]] == [index.digest]
    trust_config = out["trust_config"]
    assert out["identity"] == localsigstore.LOCAL_IDENTITY

    ok = invoke_with_cache(
        [
            "verify",
            "--image",
            f"{repo.repo_str}:latest",
            "--certificate-identity",
            localsigstore.LOCAL_IDENTITY,
            "--certificate-oidc-issuer",
            localsigstore.LOCAL_ISSUER,
            "--trust-config",
            trust_config,
            "--json",
        ],
        cache,
    )
    assert ok.returncode == 0, ok.stderr
    answer = json.loads(ok.stdout)
    assert answer["verified"] is True and answer["digest"] == index.digest
    assert len(answer["signatures"]) == 1 and answer["signatures"][0]["verified"] is True

    bad = invoke_with_cache(
        [
            "verify",
            "--image",
            f"{repo.repo_str}:latest",
            "--certificate-identity",
            "https://someone.else",
            "--certificate-oidc-issuer",
            localsigstore.LOCAL_ISSUER,
            "--trust-config",
            trust_config,
            "--json",
        ],
        cache,
    )
    assert bad.returncode == 1, bad.stderr
    answer = json.loads(bad.stdout)
    assert answer["verified"] is False
    assert "someone.else" in answer["signatures"][0]["reason"]

    refused = invoke_with_cache(
        ["sign", "--local-sigstore", "--image", f"docker.io/x/y@{index.digest}", "--json"], cache
    )
    assert refused.returncode == 1
    assert "local Sigstore instance" in refused.stderr
    assert refused.stdout == ""


def test_sign_what_publish_recorded(
    registry: LocalRegistry,
    client: Client,
    node_cache: Path,
    tmp_path: Path,
) -> None:
    from pipeline import record
    from pipeline.config import Settings
    from pipeline.stages import publish
    from tests.support.layouts import build_layout

    layout, images = build_layout(tmp_path / "layout", variants=("executor", "warmer"))
    published = publish.publish_images(client, layout, images, f"{registry.host}/team")
    cache = seed_cache(node_cache, tmp_path / "cache")
    settings = Settings.load({"cache_dir": str(cache)}, env={})
    record.save(settings.record_file, "publish", {"images": {v: i.to_dict() for v, i in published.items()}})
    out = sign.run_sign(settings, per_platform=True, local=True)
    signed = sorted((s["name"], s["platform"] or "") for s in out["signatures"])
    assert signed == sorted(
        (variant, platform)
        for variant in ("executor", "warmer")
        for platform in ("", "linux/amd64", "linux/arm64")
    )
    local_config = trust.load(Path(out["trust_config"]))
    policy = Policy(localsigstore.LOCAL_IDENTITY, localsigstore.LOCAL_ISSUER)
    for variant, image in published.items():
        ref = Reference.parse(image.repository)
        result = verify_images.verify(
            ref.with_digest(image.digest), client=client, policy=policy, config=local_config
        )
        assert result.verified, (variant, result.explain())


def test_verify_without_a_trust_config_offline_is_a_failure_not_bad_input(tmp_path: Path) -> None:
    """The public trust root cannot be fetched (no route to it: every HTTPS request goes to a port that
    refuses): exit 1 with that said, never exit 2, which would blame the user's input."""
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "HTTPS_PROXY": f"http://127.0.0.1:{port}",
        "https_proxy": f"http://127.0.0.1:{port}",
    }
    result = run_invoke(
        [
            "verify",
            "--image",
            "127.0.0.1:1/kaniko-executor@sha256:" + "0" * 64,
            "--certificate-identity",
            "someone@example.com",
            "--certificate-oidc-issuer",
            "https://issuer.example",
        ],
        env=env,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "cannot fetch the public Sigstore instance's trust root" in result.stderr
    assert "--trust-config" in result.stderr and "Traceback" not in result.stderr

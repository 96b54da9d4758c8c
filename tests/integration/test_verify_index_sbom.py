"""Issue 21 item 12: `invoke verify --type sbom` on the tag a user has (an image index).

A release attaches the SPDX SBOMs to the platform manifests. Here a real registry holds a
two-platform index whose platform images each get an SBOM attestation from the local Sigstore
instance (as the release attaches them); `invoke verify --type sbom` on the index's tag must check
each platform image's SBOM, say which it checked, and fail, naming it, when one has none.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from pipeline.oci.descriptor import Platform
from pipeline.oci.manifest import Index, parse
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from pipeline.signing import identity, trust
from pipeline.stages import attest
from tests.support.cli import run_invoke
from tests.support.layouts import build_image
from tests.support.sigstore_fixtures import local_sigstore, node_cache  # noqa: F401 - fixtures

SIGNER = "https://ci.example.test/kaniko-pipeline/release"
ISSUER = "https://issuer.example.test"
PLATFORMS = (Platform("linux", "amd64"), Platform("linux", "arm64"))


def _sbom(platform: str) -> dict[str, object]:
    return {"spdxVersion": "SPDX-2.3", "name": f"kaniko-executor {platform}", "packages": []}


def _publish(
    registry: LocalRegistry, tmp_path: Path, sigstore: localsigstore.LocalSigstore, sboms: int
) -> Index:
    """A two-platform index tagged v1, with an SBOM attested on its first ``sboms`` platform images."""
    repo = Reference.parse(f"{registry.host}/team/kaniko-executor:v1")
    with Client(credentials=Credentials.anonymous()) as client:
        layout, top = build_image(tmp_path / "layout", platforms=PLATFORMS)
        client.push_layout(layout, top, repo)
        index = parse(client.get_manifest(repo)[0])
        assert isinstance(index, Index)
        claims = [
            attest.Claim(repo, child.digest, attest.SPDX_DOCUMENT, _sbom(str(child.platform)))
            for child in index.manifests[:sboms]
        ]
        token = identity.parse(localsigstore.mint_identity_token(SIGNER, ISSUER), "test")
        attest.attest(claims, client=client, config=trust.load(sigstore.trust_config), token=token)
    return index


def _verify(
    registry: LocalRegistry, sigstore: localsigstore.LocalSigstore, tmp_path: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INVOKE_PIPELINE_CACHE_DIR": str(tmp_path / "cache")}
    return run_invoke(
        ["verify", "--image", f"{registry.host}/team/kaniko-executor:v1", "--type", "sbom",
         "--certificate-identity", SIGNER, "--certificate-oidc-issuer", ISSUER,
         "--trust-config", str(sigstore.trust_config), *extra],
        env=env,
    )  # fmt: skip


def test_verify_sbom_on_an_index_checks_each_platform_image(
    registry: LocalRegistry,
    local_sigstore: localsigstore.LocalSigstore,  # noqa: F811
    tmp_path: Path,
) -> None:
    index = _publish(registry, tmp_path, local_sigstore, sboms=2)
    result = _verify(registry, local_sigstore, tmp_path, "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    found = json.loads(result.stdout)
    assert found["verified"] is True
    assert [(p["platform"], p["digest"], p["verified"]) for p in found["platforms"]] == [
        (str(child.platform), child.digest, True) for child in index.manifests
    ]
    assert [p["predicate"]["name"] for p in found["platforms"]] == [
        "kaniko-executor linux/amd64",
        "kaniko-executor linux/arm64",
    ]
    text = _verify(registry, local_sigstore, tmp_path)
    assert text.returncode == 0, text.stderr
    assert "its 2 platform images, each checked (linux/amd64, linux/arm64)" in text.stdout
    for child in index.manifests:
        assert f"- {child.platform} {child.digest}: valid (referrer sha256:" in text.stdout


def test_verify_sbom_on_an_index_fails_naming_the_platform_without_one(
    registry: LocalRegistry,
    local_sigstore: localsigstore.LocalSigstore,  # noqa: F811
    tmp_path: Path,
) -> None:
    index = _publish(registry, tmp_path, local_sigstore, sboms=1)
    result = _verify(registry, local_sigstore, tmp_path)
    assert result.returncode == 1, result.stderr + result.stdout
    amd64, arm64 = index.manifests
    assert f"- {amd64.platform} {amd64.digest}: valid" in result.stdout
    assert f"- {arm64.platform} {arm64.digest}: NO valid attestation" in result.stdout
    assert f"no {attest.SPDX_DOCUMENT} attestation is attached to" in result.stdout

"""Issue 15 item 7, through the whole release: a wrong signing identity attaches nothing.

The release signs with a configured Sigstore instance (the local one, by its trust config) and an
identity token for SIGNER, while --certificate-identity names someone else. Before, the bundles and
`.sig` tags were attached first and the mismatch found afterwards; now the release stops right after
signing and the registry holds no signature of any kind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

from pipeline import config, release
from pipeline.errors import PipelineError
from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from tests.support.releasefork import OLD, Fork

SIGNER = "https://ci.example.test/kaniko-pipeline/release"
ISSUER = "https://issuer.example.test"


def _settings(fork: Fork, registry: LocalRegistry, tmp_path: Path, trust_config: Path) -> config.Settings:
    cache = tmp_path / "cache"
    cache.mkdir()
    for name in ("go-build", "binaries"):
        (fork.shared / name).mkdir(exist_ok=True)
        (cache / name).symlink_to(fork.shared / name)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "INVOKE_PIPELINE_", "SIGSTORE_"))
    }
    env.update({"HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path / "docker")})
    values = {
        "cache_dir": str(cache),
        "fork_dir": str(fork.fork_dir),
        "fork_url": str(fork.path),
        "prefix": registry.host,
        "platforms": "linux/amd64",
        "variants": "executor",
        "trust_config": str(trust_config),  # a configured Sigstore instance: the local one
    }
    return config.Settings.load(values, env=env)


def test_a_wrong_signer_is_refused_before_any_signature_is_attached(
    fork: Fork,
    registry: LocalRegistry,
    local_sigstore: localsigstore.LocalSigstore,
    tmp_path: Path,
) -> None:
    settings = _settings(fork, registry, tmp_path, local_sigstore.trust_config)
    options = release.Options(
        ref=OLD,
        busybox=str(fork.busybox),
        report_dir=tmp_path / "reports",
        identity_token=localsigstore.mint_identity_token(SIGNER, ISSUER),
        certificate_identity="https://ci.example.test/someone-else",
        certificate_oidc_issuer=ISSUER,
    )
    with pytest.raises(PipelineError) as info:
        release.run(settings, options)
    assert SIGNER in info.value.message and "someone-else" in info.value.message
    tags = requests.get(f"{registry.url}/v2/kaniko-executor/tags/list", timeout=10).json()["tags"]
    assert "v1.2.2" in tags  # published by digest with its version tag, as before signing
    assert not [t for t in tags if t.startswith("sha256-")], tags  # no referrers index, no .sig tag
    report = json.loads(sorted((tmp_path / "reports").glob("release-*.json"))[-1].read_text())
    assert report["status"] == "failed" and report["stages"][-1]["name"] == "sign"

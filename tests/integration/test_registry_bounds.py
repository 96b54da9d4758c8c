"""Issue 21 item 6: what a registry writer attaches to a digest cannot make a reader unbounded.

A real registry holds an image signed by the local Sigstore instance, and attached to it (the
referrers tag schema, as on Docker Hub): 10,000 junk referrers, a 1 GiB "bundle" whose descriptor
says so, and one that names the same blob as 2,000 bytes (``tests/support/crowded.py``). `invoke
verify` and the release's check (``inspect_registry``, in a process of its own) must still find the
genuine signature, say what they did not read and why, and read a bounded number of manifests and
bytes: counted by a proxy in front of the registry, and measured as the process's peak memory.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.oci.descriptor import Descriptor
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services import sigstore as localsigstore
from pipeline.signing import attach, identity, trust
from pipeline.stages import sign as sign_stage
from tests.support.cli import ROOT
from tests.support.crowded import Crowd, crowd
from tests.support.faultproxy import FaultProxy
from tests.support.layouts import build_image
from tests.support.peak import measure
from tests.support.registries import Factory
from tests.support.sigstore import local_sigstore, node_cache  # noqa: F401 - fixtures

SIGNER = "https://ci.example.test/kaniko-pipeline/release"
ISSUER = "https://issuer.example.test"
PEAK_MIB = 400  # far under the 1 GiB blob, far over what verifying takes


@dataclass
class Crowded:
    proxy: FaultProxy
    image: Descriptor
    crowd: Crowd
    trust_config: Path

    @property
    def repository(self) -> str:
        return f"{self.proxy.host}/team/kaniko-executor"


@pytest.fixture(scope="module")
def crowded(
    tmp_path_factory: pytest.TempPathFactory,
    local_sigstore: localsigstore.LocalSigstore,  # noqa: F811
) -> Iterator[Crowded]:
    root = tmp_path_factory.mktemp("crowded")
    factory = Factory(root / "registries")
    try:
        registry = factory.anonymous()
        repo = Reference.parse(f"{registry.host}/team/kaniko-executor:v1.0.0")
        with Client(credentials=Credentials.anonymous()) as client:
            layout, top = build_image(root / "layout")
            client.push_layout(layout, top, repo)
            token = identity.parse(localsigstore.mint_identity_token(SIGNER, ISSUER), "test")
            target = sign_stage.Target("executor", repo, top.digest)
            sign_stage.sign(
                [target], client=client, config=trust.load(local_sigstore.trust_config), token=token
            )
            many = crowd(client, repo, top, count=10_000, big=1 << 30, work=root)
        yield Crowded(factory.proxy(registry.url), top, many, local_sigstore.trust_config)
    finally:
        factory.close()


def _bounded_reads(crowded: Crowded, passes: int) -> None:
    proxy = crowded.proxy
    manifests = proxy.count("GET", r"/manifests/sha256:")
    assert manifests <= passes * (attach.MAX_REFERRERS + 2), manifests
    assert proxy.count("GET", f"/blobs/{crowded.crowd.big.digest}") <= passes  # the liar's, refused unread


def test_invoke_verify_is_bounded_and_says_what_it_did_not_read(crowded: Crowded, tmp_path: Path) -> None:
    crowded.proxy.reset_counts()
    env = {**os.environ, "INVOKE_PIPELINE_CACHE_DIR": str(tmp_path / "cache")}
    image = f"{crowded.repository}@{crowded.image.digest}"
    args = ["--certificate-identity", SIGNER, "--certificate-oidc-issuer", ISSUER]
    run = measure(
        [sys.executable, "-m", "invoke", "verify", "--image", image, *args,
         "--trust-config", str(crowded.trust_config), "--json"],
        env=env, cwd=str(ROOT), timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["verified"] is True
    reasons = {s["source"]: s.get("reason", "") for s in result["signatures"]}
    assert "over the 16 MiB a bundle may have: not fetched" in reasons[crowded.crowd.big_referrer]
    assert "longer than its descriptor's 2000" in reasons[crowded.crowd.liar_referrer]
    older = reasons[f"{10_003 - attach.MAX_REFERRERS} older referrer(s)"]
    assert f"10003 referrers are attached to {crowded.image.digest}, and only the newest 128" in older
    assert [s["verified"] for s in result["signatures"]].count(True) == 1
    _bounded_reads(crowded, passes=1)
    assert run.peak_mib < PEAK_MIB, run.peak_mib


def test_the_release_check_is_bounded(crowded: Crowded) -> None:
    crowded.proxy.reset_counts()
    prefix = crowded.repository.rsplit("/", 1)[0]
    run = measure(
        [sys.executable, "-m", "tests.support.release_check", prefix, "1.0.0",
         str(crowded.trust_config), SIGNER, ISSUER],
        cwd=str(ROOT), timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    state = json.loads(run.stdout)
    assert state["signed"] is True and state["tested"] is None
    assert state["version_tags"] == {"v1.0.0": crowded.image.digest}
    _bounded_reads(crowded, passes=2)  # the signature, then the test results
    assert run.peak_mib < PEAK_MIB, run.peak_mib

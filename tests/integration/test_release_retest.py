"""A failed release is tested again, never reported "up to date": "up to date" needs, for each variant's
digest, a valid signature AND a valid PASSED test result from the release's identity. Same fixture fork,
real registry, local Sigstore instance and podman as tests/integration/test_release.py (the evidence a
release attaches, and its reproduction, are in test_release_evidence.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import config, release
from pipeline.errors import SmokeError
from pipeline.registry.reference import Reference
from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from pipeline.signing.verify import Policy
from tests.support.releasefork import OLD, Fork, release_options, rolling_tags, tags_in

pytestmark = pytest.mark.slow

POLICY = Policy(localsigstore.LOCAL_IDENTITY, localsigstore.LOCAL_ISSUER)


def _results(settings: config.Settings, registry: LocalRegistry, repository: str, tag: str) -> list[str]:
    """Every valid test result attached to REPOSITORY:TAG's digest, oldest first."""
    from pipeline.evidence.testresult import TEST_RESULT
    from pipeline.registry.client import Client
    from pipeline.registry.credentials import Credentials
    from pipeline.release.signer import Signing, trust_of
    from pipeline.stages import attest

    signing = Signing(True, localsigstore.LOCAL_IDENTITY, localsigstore.LOCAL_ISSUER, None)
    configs = trust_of(settings, signing).loaded
    with Client(credentials=Credentials.anonymous()) as client:
        ref = Reference.parse(f"{registry.host}/{repository}:{tag}")
        found = attest.verify(ref, TEST_RESULT, client=client, policy=POLICY, configs=configs)
    valid = sorted((o for o in found.outcomes if o.verified), key=lambda o: o.signed_at)
    return [str((o.statement or {}).get("predicate", {}).get("result")) for o in valid]


def test_a_failed_older_release_is_tested_again_without_rebuilding_not_reported_up_to_date(
    env: tuple[config.Settings, str],
    fork: Fork,
    registry: LocalRegistry,
    tmp_path: Path,
) -> None:

    tmp = tmp_path
    settings, nginx = env
    newest = release.run(settings, release_options(fork, tmp, smoke_image=nginx))
    assert newest.status == "released"
    rolling = rolling_tags(tags_in(registry))

    # An older patch (every rolling tag stays on the newer version) fails its smoke checks: a FAILED
    # result goes to each of its digests, and nothing rolls.
    with pytest.raises(SmokeError, match="failed its smoke checks") as failed:
        release.run(settings, release_options(fork, tmp, ref=OLD))
    assert "rolling tags were not moved" in str(failed.value)
    assert rolling_tags(tags_in(registry)) == rolling

    # The next run is NOT "up to date" (the loophole): it tests again, building nothing.
    again = release.run(settings, release_options(fork, tmp, ref=OLD, smoke_image=nginx))
    assert again.status == "released", again.to_dict()
    results = "https://in-toto.io/attestation/test-result/v0.1"
    assert len([a for a in newest.attestations if a["predicate_type"] == results]) == len(newest.images)
    # testing again attaches a test result only: the build's SBOMs and provenance are there already
    assert {a["predicate_type"] for a in again.attestations} == {results}
    stages = {stage.name: stage.status for stage in again.stages}
    assert [stages[name] for name in ("fork", "build", "publish", "sign")] == ["skipped"] * 4
    assert stages["smoke"] == "ok" and stages["test-result"] == "ok" and stages["rolling"] == "ok"
    assert again.bytes_uploaded == 0
    assert _results(settings, registry, "kaniko-executor", OLD) == ["FAILED", "PASSED"]
    assert rolling_tags(tags_in(registry)) == rolling  # still the newer version's

    # and only now is it up to date
    last = release.run(settings, release_options(fork, tmp, ref=OLD, smoke_image=nginx))
    assert last.status == "up to date"
    assert [stage.name for stage in last.stages] == ["resolve", "check"]

"""Every claim of a release is bound to what it names, and no proof is lost (issue 21): a tag pointed at
another release is a failure naming it, never "up to date" or a silent keep; a run killed between sign
and attest is finished by the next one, which attaches every attestation; the one trust config the
report names verifies all of it, with the README's own commands. Same fixture fork, real registry,
local Sigstore instance and podman as tests/integration/test_release.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from pipeline import config, release
from pipeline.errors import VerifyError
from pipeline.evidence.testresult import release_descriptor
from pipeline.oci import mediatype
from pipeline.services.distribution import LocalRegistry
from tests.support.cli import ROOT, run_invoke
from tests.support.releasefork import ACCEPT, NEW, OLD, Fork, Killed, release_options, tags_in

pytestmark = pytest.mark.slow


def _manifest(registry: LocalRegistry, repo: str, ref: str) -> tuple[bytes, str]:
    response = requests.get(
        f"{registry.url}/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT}, timeout=10
    )
    response.raise_for_status()
    return response.content, response.headers["Content-Type"]


def _put(registry: LocalRegistry, repo: str, tag: str, data: bytes, media_type: str) -> str:
    response = requests.put(
        f"{registry.url}/v2/{repo}/manifests/{tag}",
        data=data,
        headers={"Content-Type": media_type},
        timeout=10,
    )
    response.raise_for_status()
    return response.headers["Docker-Content-Digest"]


def test_a_tag_pointed_at_what_this_release_is_not_fails_naming_the_tag_never_up_to_date(
    env: tuple[config.Settings, str],
    fork: Fork,
    registry: LocalRegistry,
    tmp_path: Path,
) -> None:
    settings, nginx = env
    old = release.run(settings, release_options(fork, tmp_path, ref=OLD, smoke_image=nginx))
    assert old.status == "released", old.to_dict()
    before = tags_in(registry)
    executor_old = before["kaniko-executor"][OLD]
    assert before["kaniko-executor"]["latest"] == executor_old

    # A registry writer points `latest` at an unsigned index that says it is 99.0.0: no later release
    # may keep it (it would keep it forever), nor move it: the release fails, naming the tag.
    data, media_type = _manifest(registry, "kaniko-executor", executor_old)
    index = json.loads(data)
    index["annotations"]["org.opencontainers.image.version"] = "99.0.0"
    forged = _put(registry, "kaniko-executor", "latest", json.dumps(index).encode(), media_type)
    with pytest.raises(VerifyError) as refused:
        release.run(settings, release_options(fork, tmp_path, smoke_image=nginx))
    message = str(refused.value)
    assert f"kaniko-executor:latest holds {forged} (version 99.0.0" in message, message
    assert "no valid signature from https://kaniko-pipeline.invalid/local-signer" in message
    assert refused.value.exit_code == 1
    assert tags_in(registry)["kaniko-executor"].get(NEW) is None  # nothing was built or pushed

    # ...and points the new version's tags at the signed, PASSED images of the old one: the release of
    # v1.2.3 must not say "up to date" (it would never build v1.2.3).
    _put(registry, "kaniko-executor", "latest", data, media_type)
    for repo in ("kaniko-executor", "kaniko-warmer"):  # every variant's version tags: v1.2.3, v1.2.3-debug...
        for tag in [t for t in before[repo] if t.startswith(OLD)]:
            old_data, old_type = _manifest(registry, repo, before[repo][tag])
            _put(registry, repo, tag.replace(OLD, NEW), old_data, old_type)
    with pytest.raises(VerifyError) as refused:
        release.run(settings, release_options(fork, tmp_path, smoke_image=nginx))
    message = str(refused.value)
    assert f"kaniko-executor:{NEW} holds {executor_old}, an image of version {OLD[1:]}" in message, message
    assert "not 1.2.3" in message and refused.value.exit_code == 1
    after = tags_in(registry)
    assert (
        after["kaniko-executor"]["latest"] == executor_old and after["kaniko-executor"][NEW] == executor_old
    )


def _readme_verify_block() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("- Verify what a local run signed") :]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_a_run_killed_between_sign_and_attest_is_finished_by_the_next_and_one_trust_config_verifies_it_all(
    env: tuple[config.Settings, str],
    fork: Fork,
    registry: LocalRegistry,
    tmp_path: Path,
) -> None:
    settings, nginx = env

    def kill_after_sign(stage: str) -> None:
        if stage == "sign":
            raise Killed(stage)

    with pytest.raises(Killed):
        release.run(settings, release_options(fork, tmp_path, smoke_image=nginx, after_stage=kill_after_sign))
    dry = release.run(settings, release_options(fork, tmp_path, dry_run=True))

    resumed = release.run(settings, release_options(fork, tmp_path, smoke_image=nginx))
    assert resumed.status == "released", resumed.to_dict()
    stages = {stage.name: stage.status for stage in resumed.stages}
    assert stages["sign"] == "skipped" and stages.get("attest") == "ok", stages
    # the dry run before it said what was missing
    assert dry.plan is not None and not dry.plan["up_to_date"]
    missing = dry.plan["repositories"]["executor"]["attestations_missing"]
    assert any(item.startswith("provenance on sha256:") for item in missing), missing
    kinds = [a["predicate_type"] for a in resumed.attestations]
    assert kinds.count("https://slsa.dev/provenance/v1") == len(resumed.images)
    assert kinds.count("https://spdx.dev/Document") == len(resumed.images)  # one platform per image here
    assert release.run(settings, release_options(fork, tmp_path, smoke_image=nginx)).status == "up to date"

    # The README's commands, as written there, with the one trust config the report names: the
    # signature and every attestation of every run verify.
    script = (
        _readme_verify_block()
        .replace("127.0.0.1:PORT", registry.host)
        .replace("vX.Y.Z", NEW)
        .replace("~/.cache/kaniko-pipeline/runs/release.json", resumed.files["json"])
    )
    bin_dir = str(Path(sys.executable).parent)
    shell_env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    shell_env["INVOKE_PIPELINE_CACHE_DIR"] = str(settings.cache_dir)
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=shell_env, capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.count("verified https://") == 2, ran.stdout  # the provenance and the test result
    # the test result names the run and the release it tested
    trust_config = json.loads(Path(resumed.files["json"]).read_text())["signature"]["trust_config"]
    found = run_invoke(
        [
            "verify",
            "--json",
            "--type",
            "test-result",
            "--image",
            f"{registry.host}/kaniko-executor:{NEW}",
            "--certificate-identity",
            "https://kaniko-pipeline.invalid/local-signer",
            "--certificate-oidc-issuer",
            "https://oidc.kaniko-pipeline.invalid",
            "--trust-config",
            trust_config,
        ],
        cache=settings.cache_dir,
    )
    assert found.returncode == 0, found.stderr
    predicate = json.loads(found.stdout)["predicate"]
    assert predicate["result"] == "PASSED" and predicate["url"].startswith("urn:uuid:")
    commit = resumed.commit or ""
    assert release_descriptor(NEW[1:], NEW, commit) in predicate["configuration"]
    # and the SBOM of each platform image, under the same trust config
    index = json.loads(_manifest(registry, "kaniko-executor", NEW)[0])
    [platform] = [m for m in index["manifests"] if m["mediaType"] in mediatype.MANIFEST_TYPES]
    sbom = run_invoke(
        [
            "verify",
            "--type",
            "sbom",
            "--image",
            f"{registry.host}/kaniko-executor@{platform['digest']}",
            "--certificate-identity",
            "https://kaniko-pipeline.invalid/local-signer",
            "--certificate-oidc-issuer",
            "https://oidc.kaniko-pipeline.invalid",
            "--trust-config",
            trust_config,
        ],
        cache=settings.cache_dir,
    )
    assert sbom.returncode == 0, sbom.stdout + sbom.stderr

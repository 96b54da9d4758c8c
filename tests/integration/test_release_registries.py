"""A release to two registries at once: an anonymous local registry (the primary) and one with token auth
(its credentials from the Docker config's ``auths``). Same digests in both, each digest signed once and
the same bundles attached in both, verified in each; killing the second registry mid-release fails the
release, lists both registries in the report, and moves no rolling tag in either; run again with it
back, the release completes in both. The fork, settings and smoke image are test_release.py's."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline import config, release
from pipeline.errors import RegistryError
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services import sigstore as localsigstore
from pipeline.services.registry import LocalRegistry
from pipeline.signing import attach
from pipeline.stages import verify as verify_stage
from tests.integration.test_release import Fork, _options, env, fork  # noqa: F401 - fixtures
from tests.support.registries import AuthRegistry
from tests.support.sigstore import node_cache  # noqa: F401 - fixture

pytestmark = pytest.mark.slow

REPOSITORIES = ("kaniko-executor", "kaniko-warmer")
ROLLING = ("latest", "v1", "v1.2", "debug", "slim")


def _two_registries(
    settings: config.Settings, token_registry: AuthRegistry
) -> tuple[config.Settings, Credentials]:
    """The settings with the token registry as a second prefix, and its credentials in the Docker config."""
    docker_config = Path(settings.env["DOCKER_CONFIG"])
    docker_config.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{token_registry.username}:{token_registry.password}".encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {token_registry.host: {"auth": auth}}}))
    settings = replace(settings, extra_prefixes=(token_registry.host,))
    return settings, Credentials.from_environment(settings.env)


def _tags(credentials: Credentials, host: str) -> dict[str, dict[str, str]]:
    """Every tag of the release's repositories in ``host`` and the digest it names (through the client,
    with the registry's own auth)."""
    out: dict[str, dict[str, str]] = {}
    with Client(credentials=credentials) as client:
        for name in REPOSITORIES:
            repo = Reference.parse(f"{host}/{name}")
            out[name] = {}
            for tag in client.list_tags(repo):
                found = client.head_manifest(repo.with_tag(tag))
                assert found is not None
                out[name][tag] = found.digest
    return out


def _bundles(credentials: Credentials, host: str, digest: str) -> list[bytes]:
    with Client(credentials=credentials) as client:
        found = attach.find_bundles(client, Reference.parse(f"{host}/kaniko-executor"), digest)
    return sorted(b.data for b in found if b.data)


def test_a_release_to_two_registries_fails_whole_when_one_dies_and_completes_when_it_is_back(
    env: tuple[config.Settings, str],  # noqa: F811
    fork: Fork,  # noqa: F811
    registry: LocalRegistry,
    token_registry: AuthRegistry,
    tmp_path: Path,
) -> None:
    settings, nginx = env
    settings, credentials = _two_registries(settings, token_registry)
    second = token_registry.registry

    def kill_the_second_after_publish(stage: str) -> None:
        if stage == "publish":
            second.stop()

    with pytest.raises(RegistryError) as info:
        release.run(
            settings, _options(fork, tmp_path, smoke_image=nginx, after_stage=kill_the_second_after_publish)
        )
    assert f"1 of 2 registries failed: {token_registry.host}: signatures:" in info.value.message
    assert "no rolling tag was moved in any registry" in (info.value.hint or "")
    report = json.loads((tmp_path / "reports" / "release.json").read_text())
    assert report["status"] == "failed"
    rows = {row["prefix"]: row for row in report["registries"]}
    assert rows[registry.host]["primary"] and rows[token_registry.host]["status"] == "failed"
    published = report["images"]["executor"]["digest"]
    assert rows[token_registry.host]["images"]["executor"]["digest"] == published

    # no rolling tag in either registry; the second holds the version tags it was given before it died
    second.requested_port = second.port
    second.start()
    for host in (registry.host, token_registry.host):
        tags = _tags(credentials, host)
        assert not set(ROLLING) & set(tags["kaniko-executor"]), (host, tags)
        assert tags["kaniko-executor"]["v1.2.3"] == published

    done = release.run(settings, _options(fork, tmp_path, smoke_image=nginx))
    assert done.status == "released", done.to_dict()
    assert "signatures" in [stage.name for stage in done.stages]
    assert [row["status"] for row in done.to_dict()["registries"]] == ["released", "released"]
    first, other = _tags(credentials, registry.host), _tags(credentials, token_registry.host)
    for name in REPOSITORIES:
        release_tags = {tag: digest for tag, digest in first[name].items() if not tag.startswith("sha256-")}
        assert release_tags == {t: d for t, d in other[name].items() if not t.startswith("sha256-")}
    assert first["kaniko-executor"]["latest"] == first["kaniko-executor"]["v1.2.3"] == published
    # signed once: the same bundles (one transparency log entry each) in both registries
    bundles = _bundles(credentials, registry.host, published)
    assert bundles and bundles == _bundles(credentials, token_registry.host, published)
    for host in (registry.host, token_registry.host):
        checked = verify_stage.run_verify(
            settings,
            image=f"{host}/kaniko-executor:v1.2.3",
            certificate_identity=localsigstore.LOCAL_IDENTITY,
            certificate_oidc_issuer=localsigstore.LOCAL_ISSUER,
            trust_config=done.signature["trust_config"],
        )
        assert checked.verified, checked.explain()
    markdown = Path(done.files["markdown"]).read_text()
    assert f"| `{token_registry.host}` | released |" in markdown

    # and the next run finds both complete
    again = release.run(settings, _options(fork, tmp_path, smoke_image=nginx))
    assert again.status == "up to date" and [s.name for s in again.stages] == ["resolve", "check"]

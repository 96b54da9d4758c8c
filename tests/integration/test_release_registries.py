"""A release to two registries at once: an anonymous local registry (the primary) and one with token auth
(its credentials from the Docker config's ``auths``). Same digests in both, each digest signed once and
the same bundles attached in both, verified in each; killing the second registry mid-release fails the
release, lists both registries in the report, and moves no rolling tag in either; run again with it
back, the release completes in both. The fork, settings and smoke image are test_release.py's."""

from __future__ import annotations

import base64
import io
import json
import os
import secrets
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from pipeline import config, release
from pipeline.errors import RegistryError
from pipeline.progress import Progress
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from pipeline.signing import attach
from pipeline.stages import verify_images
from tests.support.processes import ArgvWatch, loopback_alias
from tests.support.registries import AuthRegistry, Factory
from tests.support.releasefork import Fork, release_options

# Two tests stop a registry mid-release: the client's retries against it wait 0.1 s, not up to 20 s.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("short_retries")]

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
    env: tuple[config.Settings, str],
    fork: Fork,
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
            settings,
            release_options(fork, tmp_path, smoke_image=nginx, after_stage=kill_the_second_after_publish),
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

    # the dry run's plan shows what each registry holds now, and what the release would do there
    plan = release.run(settings, release_options(fork, tmp_path, dry_run=True)).plan
    assert plan is not None and [other["prefix"] for other in plan["registries"]] == [token_registry.host]
    here, there = plan["repositories"]["executor"], plan["registries"][0]["repositories"]["executor"]
    assert (here["repository"], here["signed"]) == (f"{registry.host}/kaniko-executor", True)
    assert (there["repository"], there["signed"]) == (f"{token_registry.host}/kaniko-executor", False)
    assert here["version_tags"]["v1.2.3"] == there["version_tags"]["v1.2.3"] == published
    assert there["rolling"]["latest"] == {"digest": None, "version": None, "action": "move"}
    text = release.plan_text(plan)
    assert f"registry {token_registry.host} (work to do):" in text
    assert f"{token_registry.host}/kaniko-executor (executor):" in text
    assert f"v1.2.3                 exists at {published}, NOT validly signed" in text

    done = release.run(settings, release_options(fork, tmp_path, smoke_image=nginx))
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
        checked = verify_images.run_verify(
            replace(settings, trust_config=Path(done.signature["trust_config"])),
            image=f"{host}/kaniko-executor:v1.2.3",
            certificate_identity=localsigstore.LOCAL_IDENTITY,
            certificate_oidc_issuer=localsigstore.LOCAL_ISSUER,
        )
        assert checked.verified, checked.explain()
    markdown = Path(done.files["markdown"]).read_text()
    assert f"| `{token_registry.host}` | released |" in markdown

    # and the next run finds both complete
    again = release.run(settings, release_options(fork, tmp_path, smoke_image=nginx))
    assert again.status == "up to date" and [s.name for s in again.stages] == ["resolve", "check"]


def test_a_dry_run_plans_every_registry_and_names_one_it_cannot_reach(
    env: tuple[config.Settings, str],
    fork: Fork,
    registry: LocalRegistry,
    registry_factory: Factory,
    tmp_path: Path,
) -> None:
    settings, _ = env
    other, down = registry_factory.anonymous(), registry_factory.anonymous()
    down.stop()  # nothing answers on its port
    settings = replace(settings, extra_prefixes=(f"{other.host}/team", down.host))
    report = release.run(settings, release_options(fork, tmp_path, dry_run=True))
    assert report.status == "dry run" and report.plan is not None
    rows = {row["prefix"]: row for row in report.plan["registries"]}
    assert list(rows) == [f"{other.host}/team", down.host]
    assert rows[f"{other.host}/team"]["status"] == "work to do"
    assert set(rows[f"{other.host}/team"]["repositories"]["warmer"]["version_tags"]) == {"v1.2.3"}
    assert rows[down.host]["status"] == "failed" and down.host in rows[down.host]["error"]
    text = release.plan_text(report.plan)
    assert f"registry {registry.host} (primary: builds, signs and tests there):" in text
    assert f"registry {other.host}/team (work to do):" in text
    assert f"{other.host}/team/kaniko-warmer (warmer):" in text
    assert f"registry {down.host} (failed: check: " in text
    assert f"{down.host}/kaniko-executor (executor): not known what is there; would set v1.2.3" in text
    for host in (registry.host, other.host):  # a dry run changes nothing
        assert not _catalog(host), host


def _catalog(host: str) -> list[str]:
    answer = requests.get(f"http://{host}/v2/_catalog", timeout=10).json()
    return list(answer.get("repositories") or [])


def test_when_the_first_registry_fails_the_others_are_reported_not_attempted(
    env: tuple[config.Settings, str],
    fork: Fork,
    registry: LocalRegistry,
    registry_factory: Factory,
    tmp_path: Path,
) -> None:
    settings, nginx = env
    other = registry_factory.anonymous()
    settings = replace(settings, extra_prefixes=(other.host,))

    def kill_the_primary_after_build(stage: str) -> None:
        if stage == "build":
            registry.stop()

    with pytest.raises(RegistryError) as info:
        release.run(
            settings,
            release_options(fork, tmp_path, smoke_image=nginx, after_stage=kill_the_primary_after_build),
        )
    assert registry.host in info.value.message
    report = json.loads((tmp_path / "reports" / "release.json").read_text())
    assert report["status"] == "failed" and report["stages"][-1]["name"] == "publish"
    first, second = report["registries"]
    assert (first["prefix"], first["status"], first["note"]) == (registry.host, "failed", "failed at publish")
    assert (second["prefix"], second["status"], second["error"]) == (other.host, "not attempted", None)
    assert second["note"] == f"not attempted: {registry.host} failed at publish"
    markdown = (tmp_path / "reports" / "release.md").read_text()
    assert (
        f"| `{other.host}` | not attempted | not attempted: {registry.host} failed at publish |" in markdown
    )
    assert "pending" not in markdown
    assert not _catalog(other.host)  # nothing pushed there, so no rolling tag either
    registry.requested_port = registry.port
    registry.start()
    tags = requests.get(f"{registry.url}/v2/kaniko-executor/tags/list", timeout=10)
    assert tags.status_code == 404 or not set(ROLLING) & set(tags.json().get("tags") or []), tags.text


SIGNER = "https://ci.example.test/kaniko-pipeline/registries"
ISSUER = "https://issuer.example.test"


def test_insecure_covers_every_registry_of_the_release(
    env: tuple[config.Settings, str],
    fork: Fork,
    registry: LocalRegistry,
    registry_factory: Factory,
    local_sigstore: localsigstore.LocalSigstore,
    tmp_path: Path,
) -> None:
    """Two plain-HTTP registries: the primary on 127.0.0.1, the other on 127.0.0.1 too but named by a host
    name, which gets TLS unless --insecure covers it, added to the release after the primary was
    released. A configured Sigstore instance signs (the local
    one's trust config, as a real instance's would be): local signing is for loopback names only."""
    settings, nginx = env
    other = registry_factory.anonymous()
    plain = f"{loopback_alias()}:{other.port}"
    settings = replace(settings, extra_prefixes=(plain,), trust_config=local_sigstore.trust_config)
    options = {
        "smoke_image": nginx,
        "identity_token": localsigstore.mint_identity_token(SIGNER, ISSUER),
        "certificate_identity": SIGNER,
        "certificate_oidc_issuer": ISSUER,
    }

    # released to the primary alone first: the other registry is added to a released version later
    alone = release.run(replace(settings, extra_prefixes=()), release_options(fork, tmp_path, **options))
    assert alone.status == "released", alone.to_dict()

    # without --insecure the other registry gets TLS, and the plan says why it cannot be reached
    plan = release.run(settings, release_options(fork, tmp_path, dry_run=True, **options)).plan
    assert plan is not None and plan["registries"][0]["status"] == "failed"
    assert "TLS failed" in plan["registries"][0]["error"] and "--insecure" in plan["registries"][0]["error"]

    # with it, both are released: the images go to the added registry too (not only the signatures)
    done = release.run(replace(settings, insecure=True), release_options(fork, tmp_path, **options))
    assert done.status == "released", done.to_dict()
    assert done.bytes_uploaded == 0  # the primary had them all: the rebuild is the same, byte for byte
    assert [row["status"] for row in done.to_dict()["registries"]] == ["released", "released"]
    anonymous = Credentials.anonymous()
    first, second = _tags(anonymous, registry.host), _tags(anonymous, other.host)
    assert first["kaniko-executor"]["latest"] == second["kaniko-executor"]["latest"]
    assert first["kaniko-warmer"]["v1.2.3"] == second["kaniko-warmer"]["v1.2.3"]
    checked = verify_images.run_verify(
        replace(settings, insecure=True, trust_config=local_sigstore.trust_config),
        image=f"{plain}/kaniko-executor:v1.2.3",
        certificate_identity=SIGNER,
        certificate_oidc_issuer=ISSUER,
    )
    assert checked.verified, checked.explain()


def test_credentials_from_a_credential_helper_and_from_auths_in_one_release(
    env: tuple[config.Settings, str],
    fork: Fork,
    registry_factory: Factory,
    token_registry: AuthRegistry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The primary (htpasswd auth) gets its credentials from a real docker-credential-<name> program named
    in ``credHelpers``, the other (token auth) from ``auths``. The release pushes to both, and the helper's
    secret appears in no output, no process's argv and no file the run leaves behind."""
    settings, nginx = env
    secret = "helper-" + secrets.token_hex(16)
    primary = registry_factory.htpasswd("helperuser", secret)
    bindir, asked = tmp_path / "helper-bin", tmp_path / "helper-asked.log"
    bindir.mkdir()
    helper = bindir / "docker-credential-kptest"
    helper.write_text(
        "#!/bin/sh\n"
        "read -r server\n"
        f'printf "%s %s\\n" "$*" "$server" >> {asked}\n'
        'case "$server" in\n'
        f'  *{primary.host}*) printf \'{{"ServerURL":"%s","Username":"helperuser","Secret":"{secret}"}}\' '
        '"$server" ;;\n'
        '  *) echo "credentials not found in native keychain"; exit 1 ;;\n'
        "esac\n"
    )
    helper.chmod(0o700)
    docker_config = Path(settings.env["DOCKER_CONFIG"])
    docker_config.mkdir(parents=True, exist_ok=True)
    basic = base64.b64encode(f"{token_registry.username}:{token_registry.password}".encode()).decode()
    (docker_config / "config.json").write_text(
        json.dumps({"credHelpers": {primary.host: "kptest"}, "auths": {token_registry.host: {"auth": basic}}})
    )
    settings = replace(
        settings,
        prefix=primary.host,
        extra_prefixes=(token_registry.host,),
        env={**settings.env, "PATH": f"{bindir}{os.pathsep}{settings.env.get('PATH', os.defpath)}"},
    )
    scratch = tmp_path / "tmp"  # the run's temporary files (kaniko's docker config): looked at afterwards
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    stream = io.StringIO()
    with ArgvWatch(secret) as watch:
        done = release.run(
            settings,
            release_options(fork, tmp_path, smoke_image=nginx),
            progress=Progress(stream, interactive=False),
        )
    assert done.status == "released", done.to_dict()
    assert [row["status"] for row in done.to_dict()["registries"]] == ["released", "released"]
    # the helper was asked for the primary only, with nothing but `get` on its command line
    lines = asked.read_text().splitlines()
    assert lines and all(line == f"get {primary.host}" for line in lines), lines
    # both registries hold the release, each read with its own credentials
    credentials = Credentials.from_environment(settings.env)
    first, other = _tags(credentials, primary.host), _tags(credentials, token_registry.host)
    assert first["kaniko-executor"]["latest"] == other["kaniko-executor"]["latest"]
    assert first["kaniko-warmer"]["v1.2.3"] == other["kaniko-warmer"]["v1.2.3"]
    assert done.image is not None and done.image.startswith(f"{primary.host}/kaniko-nginx@")  # kaniko pushed
    # the secret: in no output, no argv, no file left behind (the helper's own script aside)
    captured = capfd.readouterr()
    assert secret not in captured.out + captured.err + stream.getvalue()
    assert not watch.leaks and {"podman", "go"} & watch.seen, (watch.leaks, sorted(watch.seen)[:40])
    for path in tmp_path.rglob("*"):
        if path.is_file() and not path.is_symlink() and path != helper:
            assert secret.encode() not in path.read_bytes(), path

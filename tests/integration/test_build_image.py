"""build-image against real podman and real registries, with a fixture executor (tests/support/fakekaniko)
standing in for kaniko: it reports what it saw inside the container and pushes a tiny real image, so the
podman flags, mounts, credentials and digest handling are tested for real."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import PROJECT_ROOT, Settings
from pipeline.errors import KanikoError, VerifyError
from pipeline.progress import Silent
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services import kaniko, localsigstore
from pipeline.services.distribution import LocalRegistry
from pipeline.services.podman import Podman
from pipeline.signing import identity, trust
from pipeline.stages import build_image, sign
from tests.support import fakeexecutor
from tests.support.cli import run_invoke
from tests.support.registries import AuthRegistry

pytestmark = pytest.mark.slow

# CAP_CHOWN (0) | CAP_DAC_OVERRIDE (1) | CAP_FOWNER (3): the kaniko README's profile, nothing else.
README_CAPS = f"{(1 << 0) | (1 << 1) | (1 << 3):016x}"


@pytest.fixture
def executor(fake_binary: Path, registry: LocalRegistry, tmp_path: Path, podman: Podman) -> Any:
    ref = fakeexecutor.push(fake_binary, tmp_path / "executor-layout", registry.host)
    yield ref
    podman.rmi(str(ref))


def _credentials(tmp_path: Path, dest: AuthRegistry) -> Credentials:
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    auth = base64.b64encode(f"{dest.username}:{dest.password}".encode()).decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {dest.host: {"auth": auth}}}))
    return Credentials.from_environment({"DOCKER_CONFIG": str(config_dir), "HOME": str(tmp_path)})


def _request(
    executor: Reference, dest: AuthRegistry, mirror: LocalRegistry, **extra: Any
) -> kaniko.BuildRequest:
    return kaniko.BuildRequest(
        executor=executor,
        destination=Reference.parse(f"{dest.host}/nginx/kaniko-nginx:e2e"),
        context=PROJECT_ROOT,
        registry_mirror=mirror.host,
        base_image=f"docker.io/{'library/nginx-debian'}:test",
        **extra,
    )


def _run(
    podman: Podman,
    request: kaniko.BuildRequest,
    credentials: Credentials,
    capfd: pytest.CaptureFixture[str],
    verify: build_image.ExecutorVerifier | None = None,
) -> tuple[build_image.BuiltImage | Exception, dict[str, Any]]:
    outcome: build_image.BuiltImage | Exception
    try:
        outcome = build_image.build_image(podman, request, credentials=credentials, verify=verify)
    except KanikoError as exc:
        outcome = exc
    captured = capfd.readouterr()
    found = fakeexecutor.reports(captured.err + captured.out)
    assert len(found) == 1, captured.err[-2000:]
    return outcome, found[0]


@pytest.fixture(autouse=True)
def private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stage's private run directories go under this test's own temporary directory, so the check
    that none is left behind sees this test's only, not another session's on the same machine."""
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))


def _leftover_run_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("kaniko-run-*"))


def test_build_image_runs_the_executor_as_the_readme_says_and_reports_the_pushed_digest(
    podman: Podman,
    executor: Reference,
    registry: LocalRegistry,
    registry_htpasswd: AuthRegistry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    credentials = _credentials(tmp_path, registry_htpasswd)
    before = _leftover_run_dirs()
    request = _request(executor, registry_htpasswd, registry)
    result, seen = _run(podman, request, credentials, capfd)
    assert isinstance(result, build_image.BuiltImage), result

    # the README's security profile, seen from inside the container
    assert seen["uid"] == 0
    assert seen["cap_eff"] == README_CAPS
    assert seen["no_new_privs"] == "1"
    # the context and the credentials are read-only mounts; the Dockerfile is the project's
    assert "read-only file system" in seen["workspace_write_error"]
    assert "read-only file system" in seen["config_write_error"]
    assert seen["dockerfile_bytes"] == (PROJECT_ROOT / "Dockerfile").stat().st_size
    # credentials only in the mounted config: never in argv or the environment
    auth = base64.b64encode(f"{registry_htpasswd.username}:{registry_htpasswd.password}".encode()).decode()
    assert seen["auth_sha256"] == {registry_htpasswd.host: hashlib.sha256(auth.encode()).hexdigest()}
    for text in (*seen["argv"], *seen["env"]):
        assert registry_htpasswd.password not in text
        assert auth not in text
    # the flags kaniko got
    argv = seen["argv"]
    assert f"--destination={registry_htpasswd.host}/nginx/kaniko-nginx:e2e" in argv
    assert "--dockerfile=/workspace/Dockerfile" in argv
    assert "--context=dir:///workspace" in argv
    assert f"--registry-mirror={registry.host}" in argv
    assert "--insecure-pull" in argv
    assert "--build-arg=BASE_IMAGE=docker.io/library/nginx-debian:test" in argv
    assert f"--insecure-registry={registry.host}" in argv
    # loopback registries are reachable from inside the container
    assert seen["mirror_status"] == 200
    assert seen["destination_status"] == 200

    # the reported digest is the one kaniko wrote, and the registry holds it under the tag
    assert result.digest == seen["pushed"]
    assert result.image == f"{registry_htpasswd.host}/nginx/kaniko-nginx@{seen['pushed']}"
    with Client(credentials=credentials) as client:
        desc = client.head_manifest(request.destination)
    assert desc is not None and desc.digest == result.digest
    # the private files are gone and the container too
    assert not (_leftover_run_dirs() - before), "a run directory was left behind"
    ps = podman.command(["ps", "-a", "--format=json"], what="ps").stdout
    assert str(executor) not in ps


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fail", "kaniko failed (exit status 3)"),
        ("nodigest", "wrote no digest file"),
        ("baddigest", "not a sha256 digest"),
    ],
)
def test_build_image_fails_clearly_when_the_executor_does(
    podman: Podman,
    executor: Reference,
    registry: LocalRegistry,
    registry_htpasswd: AuthRegistry,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    mode: str,
    message: str,
) -> None:
    credentials = _credentials(tmp_path, registry_htpasswd)
    before = _leftover_run_dirs()
    request = _request(executor, registry_htpasswd, registry, build_args={"FAKE_MODE": mode})
    result, _ = _run(podman, request, credentials, capfd)
    assert isinstance(result, KanikoError)
    assert message in result.message
    assert not (_leftover_run_dirs() - before), "a run directory was left behind"


def test_build_image_refuses_an_executor_that_fails_verification(
    podman: Podman,
    executor: Reference,
    registry: LocalRegistry,
    registry_htpasswd: AuthRegistry,
    tmp_path: Path,
) -> None:
    calls: list[Reference] = []

    def refuse(ref: Reference) -> None:
        calls.append(ref)
        raise VerifyError(f"no valid signature for {ref}")

    request = _request(executor, registry_htpasswd, registry)
    with pytest.raises(VerifyError):
        build_image.build_image(podman, request, credentials=Credentials.anonymous(), verify=refuse)
    assert calls == [executor]
    # nothing was pulled: the executor never ran
    assert not podman.image_exists(str(executor))


SIGNER = "https://ci.example.test/kaniko-pipeline/release"
ISSUER = "https://issuer.example.test"


def test_build_image_verifies_the_executor_with_the_sign_stage_first(
    podman: Podman,
    fake_binary: Path,
    registry: LocalRegistry,
    registry_htpasswd: AuthRegistry,
    local_sigstore: localsigstore.LocalSigstore,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    signed = fakeexecutor.push(fake_binary, tmp_path / "signed", registry.host, "kaniko/executor")
    unsigned = fakeexecutor.push(
        fake_binary, tmp_path / "unsigned", registry.host, "kaniko/unsigned", "unsigned"
    )
    assert unsigned.digest != signed.digest
    with Client(credentials=Credentials.anonymous()) as client:
        token = identity.parse(localsigstore.mint_identity_token(SIGNER, ISSUER), "test")
        target = sign.Target("executor", Reference(signed.registry, signed.repository), str(signed.digest))
        sign.sign([target], client=client, config=trust.load(local_sigstore.trust_config), token=token)
    settings = Settings.load({"cache_dir": str(tmp_path / "cache")}, env={"HOME": str(tmp_path)})

    def verifier(who: str) -> build_image.ExecutorVerifier:
        return build_image.signature_verifier(
            dataclasses.replace(settings, trust_config=local_sigstore.trust_config),
            certificate_identity=who,
            certificate_oidc_issuer=ISSUER,
            progress=Silent(),
        )

    credentials = _credentials(tmp_path, registry_htpasswd)
    try:
        # a signed executor, signed by the expected identity, runs
        result = build_image.build_image(
            podman,
            _request(signed, registry_htpasswd, registry),
            credentials=credentials,
            verify=verifier(SIGNER),
        )
        assert fakeexecutor.reports(capfd.readouterr().err)[0]["pushed"] == result.digest
        # the same executor with another expected identity, and an unsigned one, are refused before running
        for executor, who in ((signed, "https://someone.else"), (unsigned, SIGNER)):
            with pytest.raises(VerifyError, match="no valid signature"):
                build_image.build_image(
                    podman,
                    _request(executor, registry_htpasswd, registry),
                    credentials=credentials,
                    verify=verifier(who),
                )
        assert not fakeexecutor.reports(capfd.readouterr().err)
        assert not podman.image_exists(str(unsigned))
    finally:
        podman.rmi(str(signed))
        podman.rmi(str(unsigned))


def test_invoke_build_image_prints_the_digest_and_streams_kaniko_to_stderr(
    executor: Reference, registry: LocalRegistry, registry_htpasswd: AuthRegistry, tmp_path: Path
) -> None:
    _credentials(tmp_path, registry_htpasswd)  # writes tmp_path/docker-config/config.json
    env = {
        **os.environ,
        "INVOKE_PIPELINE_CACHE_DIR": str(tmp_path / "cache"),
        "DOCKER_CONFIG": str(tmp_path / "docker-config"),
    }
    env.pop("DOCKER_HUB_USERNAME", None)
    env.pop("DOCKER_HUB_KANIKO_PAT", None)
    args = [
        "build-image",
        "--executor",
        str(executor),
        "--destination",
        f"{registry_htpasswd.host}/nginx/kaniko-nginx:cli",
        "--registry-mirror",
        registry.host,
        "--no-verify",
        "--json",
    ]
    done = run_invoke(args, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    seen = fakeexecutor.reports(done.stderr)
    assert len(seen) == 1 and seen[0]["pushed"] == result["digest"]
    assert "not verifying the executor's signature" in done.stderr
    assert registry_htpasswd.password not in done.stdout + done.stderr
    recorded = json.loads((tmp_path / "cache" / "runs" / "last.json").read_text())
    assert recorded["build-image"]["image"] == result["image"]

    # without --no-verify and without a signer identity it refuses, exit 2, no traceback
    refused = run_invoke(args[:-2] + ["--json"], env=env)
    assert refused.returncode == 2
    assert "--no-verify" in refused.stderr and "Traceback" not in refused.stderr
    assert not fakeexecutor.reports(refused.stderr)

"""The kaniko run's podman and executor arguments, and the Docker config it gets (pure logic)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from pipeline.errors import ConfigError, KanikoError, UsageError
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services import kaniko
from pipeline.stages import build_image

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    return tmp_path


def _request(context: Path, **extra: object) -> kaniko.BuildRequest:
    values: dict[str, object] = {
        "executor": Reference.parse(f"registry.example/kaniko/executor@{DIGEST}"),
        "destination": Reference.parse("docker.io/someone/kaniko-nginx:v1"),
        "context": context,
    }
    values.update(extra)
    return kaniko.BuildRequest(**values)  # type: ignore[arg-type]


def test_podman_runs_the_executor_with_exactly_the_readme_profile(context: Path, tmp_path: Path) -> None:
    spec = kaniko.run_spec(_request(context), tmp_path / "config.json", tmp_path / "out", "kp-x")
    argv = spec.argv()
    security = [a for a in argv if a.startswith(("--cap-", "--security-opt", "--privileged"))]
    assert security == [
        "--cap-drop=ALL",
        "--cap-add=CHOWN,FOWNER,DAC_OVERRIDE",
        "--security-opt=no-new-privileges",
    ]
    assert f"--volume={context.resolve()}:/workspace:ro" in argv
    assert f"--volume={tmp_path / 'config.json'}:/kaniko/.docker/config.json:ro" in argv
    assert f"--volume={tmp_path / 'out'}:/kaniko/pipeline-output:rw" in argv
    assert not [a for a in argv if a.startswith("--env")]
    assert not [a for a in argv if a.startswith("--network")]  # no loopback registry: default network
    assert argv[argv.index(f"registry.example/kaniko/executor@{DIGEST}") + 1 :] == kaniko.executor_args(
        _request(context)
    )


def test_public_registries_get_no_insecure_flags(context: Path) -> None:
    args = kaniko.executor_args(_request(context, registry_mirror="mirror.example", base_image="nginx:1"))
    assert "--registry-mirror=mirror.example" in args
    assert "--build-arg=BASE_IMAGE=nginx:1" in args
    assert not [a for a in args if "insecure" in a]


def test_loopback_mirror_and_destination_are_plain_http_and_host_network(
    context: Path, tmp_path: Path
) -> None:
    request = _request(
        context,
        destination=Reference.parse("127.0.0.1:5001/nginx/kaniko-nginx:v1"),
        registry_mirror="127.0.0.1:5000",
    )
    args = kaniko.executor_args(request)
    assert "--insecure-pull" in args
    assert "--insecure" in args
    assert "--insecure-registry=127.0.0.1:5001" in args
    assert "--insecure-registry=127.0.0.1:5000" in args
    spec = kaniko.run_spec(request, tmp_path / "c", tmp_path / "o", "kp-x")
    assert "--network=host" in spec.argv()


def test_executor_must_be_named_by_digest(context: Path) -> None:
    with pytest.raises(UsageError, match="not named by digest"):
        _request(context, executor=Reference.parse("registry.example/kaniko/executor:v1"))


def test_dockerfile_must_be_inside_the_context(context: Path) -> None:
    with pytest.raises(UsageError, match="inside the context"):
        _request(context, dockerfile="../Dockerfile")
    with pytest.raises(UsageError, match="no Nope"):
        _request(context, dockerfile="Nope")


def test_default_destination_uses_the_docker_hub_username() -> None:
    ref = build_image.default_destination({"DOCKER_HUB_USERNAME": "someone"}, "v1.25.16")
    assert str(ref) == "docker.io/someone/kaniko-nginx:v1.25.16"
    with pytest.raises(ConfigError, match="DOCKER_HUB_USERNAME"):
        build_image.default_destination({}, "v1")


def test_docker_config_has_only_the_hosts_asked_for_under_docker_hubs_key() -> None:
    creds = Credentials.from_environment(
        {"DOCKER_HUB_USERNAME": "someone", "DOCKER_HUB_KANIKO_PAT": "pat-secret", "HOME": "/nonexistent"}
    )
    config = kaniko.docker_config(creds, ["docker.io", "127.0.0.1:5000"])
    assert list(config["auths"]) == ["https://index.docker.io/v1/"]
    decoded = base64.b64decode(config["auths"]["https://index.docker.io/v1/"]["auth"]).decode()
    assert decoded == "someone:pat-secret"
    assert kaniko.docker_config(creds, ["127.0.0.1:5000"]) == {"auths": {}}


def test_private_files_are_0600_in_a_0700_dir_and_deleted(tmp_path: Path) -> None:
    with kaniko.private_files({"auths": {"h": {"auth": "x"}}}) as (config_file, output):
        assert config_file.stat().st_mode & 0o777 == 0o600
        assert config_file.parent.stat().st_mode & 0o777 == 0o700
        assert json.loads(config_file.read_text()) == {"auths": {"h": {"auth": "x"}}}
        assert output.is_dir()
        root = config_file.parent
    assert not root.exists()


def test_digest_file_is_validated(tmp_path: Path) -> None:
    (tmp_path / "digest").write_text(DIGEST + "\n")
    assert kaniko.read_digest(tmp_path) == DIGEST
    (tmp_path / "digest").write_text("sha256:short")
    with pytest.raises(KanikoError, match="not a sha256 digest"):
        kaniko.read_digest(tmp_path)


def test_build_image_without_a_signer_identity_asks_for_one_or_no_verify(
    context: Path, tmp_path: Path
) -> None:
    from pipeline.config import Settings

    settings = Settings.load({"cache_dir": str(tmp_path / "cache")}, env={})
    with pytest.raises(UsageError, match="needs the signer's identity") as info:
        build_image.run(
            settings,
            build_image.ImageInput(
                executor=f"registry.example/kaniko/executor@{DIGEST}",
                destination="registry.example/nginx:v1",
                context=str(context),
            ),
        )
    assert "--no-verify" in str(info.value)

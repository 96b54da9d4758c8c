"""The smoke stage against real images in real podman: the Dockerfile's nginx image passes; images
that run as root or serve another page fail the right checks; the container is removed either way."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest

from pipeline import config
from pipeline.errors import SmokeError
from pipeline.services.podman import Podman, private_auth_file
from pipeline.stages import smoke
from pipeline.stages.smoke import check_image
from tests.support.cli import run_invoke
from tests.support.images import ImageBuilder
from tests.support.registries import AuthRegistry

pytestmark = pytest.mark.slow


def _name() -> str:
    return f"kp-smoke-test-{secrets.token_hex(4)}"


def test_dockerfile_image_passes_every_check(podman: Podman, nginx_image: str) -> None:
    name = _name()
    result = check_image(podman, nginx_image, name=name)
    assert result.ok, result.to_dict()
    assert [c.name for c in result.checks] == [
        "image-user",
        "image-port",
        "answers",
        "welcome-page",
        "process-user",
    ]
    result.raise_for_failure()  # does not raise
    assert not podman.exists(name)


def _derived(images: ImageBuilder, tmp_path: Path, what: str, base: str, lines: str) -> str:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(f"ARG BASE\nFROM ${{BASE}}\n{lines}\n")
    return images.build(what, tmp_path, dockerfile, {"BASE": base})


def test_image_running_as_root_fails_user_checks(
    podman: Podman, images: ImageBuilder, nginx_image: str, tmp_path: Path
) -> None:
    image = _derived(images, tmp_path, "as-root", nginx_image, "USER 0")
    name = _name()
    result = check_image(podman, image, name=name, wait=15)
    failed = {c.name for c in result.failed()}
    assert {"image-user", "process-user"} <= failed, result.to_dict()
    assert "image-port" not in failed
    assert not podman.exists(name)
    with pytest.raises(SmokeError, match="image-user"):
        result.raise_for_failure()


def test_image_serving_another_page_fails_welcome_check(
    podman: Podman, images: ImageBuilder, nginx_image: str, tmp_path: Path
) -> None:
    image = _derived(
        images,
        tmp_path,
        "other-page",
        nginx_image,
        "USER 0\nRUN echo 'hello, not nginx' > /usr/share/nginx/html/index.html\nUSER 101:101",
    )
    name = _name()
    result = check_image(podman, image, name=name)
    assert [c.name for c in result.failed()] == ["welcome-page"], result.to_dict()
    assert "not the nginx welcome page" in result.failed()[0].detail
    assert not podman.exists(name)


def test_image_that_exits_is_reported_and_removed(
    podman: Podman, images: ImageBuilder, nginx_image: str, tmp_path: Path
) -> None:
    image = _derived(images, tmp_path, "exits", nginx_image, 'CMD ["nginx", "-t"]')
    name = _name()
    result = check_image(podman, image, name=name, wait=30)
    answers = next(c for c in result.checks if c.name == "answers")
    assert not answers.ok
    assert "stopped" in answers.detail
    assert not podman.exists(name)


def _invoke_smoke(image: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return run_invoke(["smoke", "--image", image, "--json", "--wait", "30"], cache=tmp_path / "cache")


def test_smoke_task_prints_one_json_object_and_exits_by_outcome(
    images: ImageBuilder, nginx_image: str, tmp_path: Path
) -> None:
    good = _invoke_smoke(nginx_image, tmp_path)
    assert good.returncode == 0, good.stderr
    report = json.loads(good.stdout)
    assert report["ok"] is True and report["image"] == nginx_image
    assert {c["name"] for c in report["checks"]} == {
        "image-user",
        "image-port",
        "answers",
        "welcome-page",
        "process-user",
    }

    (tmp_path / "ctx").mkdir()
    bad_image = _derived(images, tmp_path / "ctx", "task-root", nginx_image, "USER root")
    bad = _invoke_smoke(bad_image, tmp_path)
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["ok"] is False
    assert "image-user" in bad.stderr and "Traceback" not in bad.stderr


def test_smoke_pulls_an_image_from_a_registry_that_needs_credentials(
    podman: Podman, nginx_image: str, registry_htpasswd: AuthRegistry, tmp_path: Path
) -> None:
    """The release smoke-tests the image kaniko pushed to its first registry; when that registry needs
    credentials (from the Docker config), podman pulls with them, given as a private auth file."""
    reg = registry_htpasswd
    target = f"{reg.host}/smoke/nginx:auth-{secrets.token_hex(3)}"
    basic = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    auths = {"auths": {reg.host: {"auth": basic}}}
    with private_auth_file(auths) as authfile:
        podman.command(
            [
                "push",
                "--quiet",
                "--tls-verify=false",
                f"--authfile={authfile}",
                nginx_image,
                f"docker://{target}",
            ],
            what="pushing the test image",
        )
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps(auths))
    env = {"HOME": str(tmp_path), "DOCKER_CONFIG": str(docker), "PATH": os.environ.get("PATH", os.defpath)}
    settings = config.Settings.load({"cache_dir": str(tmp_path / "cache")}, env=env)
    result = smoke.run(settings, image=target)
    assert result.ok, result.to_dict()
    assert not podman.image_exists(target)  # pulled for the checks, then removed again

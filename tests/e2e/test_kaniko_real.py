"""The real kaniko executor (built from the fork mirror in KANIKO_FORK_URL) builds the top-level Dockerfile
in podman with the README's profile, on the Debian-made base served through --registry-mirror as
docker.io/library/nginx-debian, pushes it to a local registry, and the pushed image passes smoke."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pipeline.config import PROJECT_ROOT
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services import kaniko, nginxbase
from pipeline.services.distribution import LocalRegistry
from pipeline.services.podman import Podman
from pipeline.source import pinfile
from pipeline.stages import build_image, fork
from pipeline.stages.smoke import check_image
from tests.conftest import require_tool
from tests.support import fakeexecutor
from tests.support.images import shared_test_cache


def _real_executor(fork_url: str, out: Path) -> Path:
    go = require_tool("go", "the executor is built from the fork with Go")
    current = pinfile.load(PROJECT_ROOT / "fork" / "pin.json")
    checkout = fork.checkout(
        ref=current.tag,
        pin=current,
        url=fork_url,
        patches_dir=PROJECT_ROOT / "fork" / "patches",
        cache_dir=shared_test_cache(),
    )
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=vendor", "GOTOOLCHAIN": "local"}
    flags = f'-extldflags "-static" -X {checkout.module}/pkg/version.version={checkout.tag} -w -s'
    subprocess.run(
        [go, "build", "-trimpath", "-ldflags", flags, "-o", str(out), "./cmd/executor"],
        cwd=checkout.path,
        env=env,
        check=True,
        capture_output=True,
    )
    return out


def test_real_kaniko_builds_the_dockerfile_and_the_image_passes_smoke(
    fork_url: str, podman: Podman, nginx_base: nginxbase.BaseImage, registry: LocalRegistry, tmp_path: Path
) -> None:
    binary = _real_executor(fork_url, tmp_path / "executor")
    executor = fakeexecutor.push(binary, tmp_path / "executor-layout", registry.host, "kaniko/executor")
    with Client(credentials=Credentials.anonymous()) as client:
        base = nginxbase.publish(nginx_base, client, registry.host)
    request = kaniko.BuildRequest(
        executor=executor,
        destination=Reference.parse(f"{registry.host}/nginx/kaniko-nginx:e2e"),
        context=PROJECT_ROOT,
        registry_mirror=registry.host,
        base_image=nginxbase.docker_hub_name(base.digest),
    )
    result = build_image.build_image(podman, request, credentials=Credentials.anonymous(), verify=None)
    try:
        with Client(credentials=Credentials.anonymous()) as client:
            desc = client.head_manifest(request.destination)
        assert desc is not None and desc.digest == result.digest
        smoke = check_image(podman, result.image)
        assert smoke.ok, smoke.to_dict()
    finally:
        podman.rmi(result.image)
        podman.rmi(str(executor))

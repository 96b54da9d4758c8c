"""Issue 15 item 2: an exact version tag never moves silently (the real distribution registry).

A second build of the same version with other content (what another toolchain gives) must stop the
publish before anything is pushed, name the variant, platform and layer that differ, and leave every
tag where it was. Only --replace-version-tags replaces it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests

from pipeline.errors import RegistryError
from pipeline.oci import mediatype
from pipeline.progress import Silent
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.services.distribution import LocalRegistry
from pipeline.stages import publish
from tests.support.cli import run_invoke
from tests.support.layouts import build_layout

ACCEPT = ", ".join(sorted(mediatype.ALL_MANIFEST_TYPES))


def _tag_digests(url: str, repository: str) -> dict[str, str]:
    tags = requests.get(f"{url}/v2/{repository}/tags/list", timeout=10).json().get("tags") or []
    out = {}
    for tag in tags:
        head = requests.head(f"{url}/v2/{repository}/manifests/{tag}", headers={"Accept": ACCEPT}, timeout=10)
        out[tag] = head.headers["Docker-Content-Digest"]
    return out


def _exists(url: str, repository: str, digest: str) -> bool:
    head = requests.head(f"{url}/v2/{repository}/manifests/{digest}", headers={"Accept": ACCEPT}, timeout=10)
    return head.status_code == 200


def test_a_rebuild_with_other_digests_stops_before_any_tag_moves(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    first_layout, first = build_layout(tmp_path / "first", variants=("executor", "debug"))
    second_layout, second = build_layout(tmp_path / "second", variants=("executor", "debug"))
    prefix = f"{registry.host}/repro"
    with Client(credentials=Credentials.anonymous()) as client:
        publish.publish_images(client, first_layout, first, prefix, progress=Silent())
        before = _tag_digests(registry.url, "repro/kaniko-executor")
        assert before["v1.25.16"] == first["executor"].digest

        with pytest.raises(RegistryError) as info:
            publish.publish_images(client, second_layout, second, prefix, progress=Silent())
        message = info.value.message
        assert type(info.value).__name__ == "ReproducibilityError" and info.value.exit_code == 1
        assert message.startswith("reproducibility failure")
        assert f"executor: {prefix}/kaniko-executor:v1.25.16 is {first['executor'].digest}" in message
        assert f"this build is {second['executor'].digest}" in message
        assert "debug: " in message and ":v1.25.16-debug" in message
        assert "linux/amd64: manifest " in message and "linux/arm64: manifest " in message
        assert "linux/amd64: layer 1 of " in message  # the published image was read: the layer is named
        assert info.value.hint and "--replace-version-tags" in info.value.hint
        # nothing moved, and nothing of the second build was pushed
        assert _tag_digests(registry.url, "repro/kaniko-executor") == before
        assert not _exists(registry.url, "repro/kaniko-executor", second["executor"].digest)

        # the same build again is no failure
        publish.publish_images(client, first_layout, first, prefix, progress=Silent())

        # the explicit override replaces it
        publish.publish_images(
            client, second_layout, second, prefix, replace_version_tags=True, progress=Silent()
        )
    after = _tag_digests(registry.url, "repro/kaniko-executor")
    assert after["v1.25.16"] == second["executor"].digest and after["latest"] == second["executor"].digest


def test_the_publish_task_refuses_with_exit_1_and_the_flag_overrides(
    registry: LocalRegistry, tmp_path: Path, cache_dir: Path
) -> None:
    first_layout, first = build_layout(tmp_path / "first", variants=("executor",))
    second_layout, second = build_layout(tmp_path / "second", variants=("executor",))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "INVOKE_PIPELINE_"))}
    prefix = f"{registry.host}/repro-cli"
    args = ["publish", "--prefix", prefix, "--json", "--layout"]
    assert run_invoke([*args, str(first_layout.root)], env=env, cache=cache_dir, timeout=120).returncode == 0
    refused = run_invoke([*args, str(second_layout.root)], env=env, cache=cache_dir, timeout=120)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "reproducibility failure" in refused.stderr and "--replace-version-tags" in refused.stderr
    assert _tag_digests(registry.url, "repro-cli/kaniko-executor")["v1.25.16"] == first["executor"].digest
    replaced = run_invoke(
        [*args, str(second_layout.root), "--replace-version-tags"], env=env, cache=cache_dir, timeout=120
    )
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads(replaced.stdout)["images"]["executor"]["digest"] == second["executor"].digest
    assert _tag_digests(registry.url, "repro-cli/kaniko-executor")["v1.25.16"] == second["executor"].digest

"""The fixture fork a release runs on, and the settings of such a release (the release tests share them).

The fork is tests/support/fixture_fork.py's tree with the fake executor as its cmd/executor
(tests/support/fakeexecutor.py), so the executor image a release builds is the one build-image really runs
in podman. It has two release tags, OLD and NEW (pinned); one fork serves the whole session, with its Go
build cache, compiled binaries and node packages in ``shared`` (all keyed by content, so sharing them
changes no result, only the time a release takes).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from pipeline import config, record, release
from pipeline.oci import mediatype
from pipeline.services import localsigstore
from pipeline.services.distribution import LocalRegistry
from pipeline.services.nginxbase import BaseImage
from pipeline.stages import verify_images
from tests.conftest import require_tool
from tests.support import fakeexecutor, fixture_fork
from tests.support.sigstore_fixtures import seed_cache

ACCEPT = ", ".join(sorted(mediatype.ALL_MANIFEST_TYPES))
VARIANTS = "executor,debug,slim,warmer"


class Killed(Exception):
    """Raised by a release's stage hook (``after_stage``): the run stops there, as if killed."""


OLD, NEW = "v1.2.2", "v1.2.3"


@dataclass
class Fork:
    path: Path
    fork_dir: Path  # holds pin.json (no patches)
    busybox: Path
    shared: Path  # Go build cache, binaries, node packages: shared by the session's releases


@pytest.fixture(scope="session")
def fork(tmp_path_factory: pytest.TempPathFactory, node_cache: Path, go_build_cache: Path) -> Fork:
    require_tool("go", "the release compiles the fixture fork")
    require_tool("git", "the fixture fork is a git repository")
    root = tmp_path_factory.mktemp("release-fork")
    busybox = root / "busybox"
    digest = fixture_fork.make_busybox_layout(busybox, platforms=("linux/amd64",))
    path = root / "fork"
    checkout = fixture_fork.make_fork(path, digest, tag=OLD)
    # The fork's executor is the fake executor: build-image runs what the release built.
    fakeexecutor.install_into_fork(path)
    subprocess.run(["git", "-C", str(path), "tag", NEW], check=True)
    subprocess.run(["git", "-C", str(path), "tag", "-f", OLD], check=True, capture_output=True)
    commit = fixture_fork.checkout_of(path, NEW).commit
    assert commit != checkout.commit
    fork_dir = root / "pin"
    fork_dir.mkdir()
    (fork_dir / "pin.json").write_text(json.dumps({"url": str(path), "tag": NEW, "commit": commit}))
    shared = root / "shared"
    seed_cache(node_cache, shared)
    (shared / "go-build").symlink_to(go_build_cache)
    return Fork(path, fork_dir, busybox, shared)


def pipeline_env(home: Path) -> dict[str, str]:
    """This process's environment for a release under test: none of the user's registry, pipeline,
    Sigstore or CI settings, and ``home`` as its home (with an empty Docker config there)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("DOCKER_", "INVOKE_PIPELINE_", "SIGSTORE_", "KANIKO_", "GITHUB_", "GITLAB_", "CI")
        )
    }
    env.update({"HOME": str(home), "DOCKER_CONFIG": str(home / ".docker")})
    return env


def cli_env(
    fork: Fork,
    registry: LocalRegistry,
    home: Path,
    cache: Path,
    platforms: tuple[str, ...] = ("linux/amd64",),
) -> dict[str, str]:
    """The environment of an `invoke` subprocess on the fixture fork and the test registry: none of the
    user's registry, pipeline, Sigstore or CI settings, ``home`` as its home, ``cache`` as its cache."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DOCKER_", "INVOKE_PIPELINE_", "SIGSTORE_", "KANIKO_", "GITHUB_", "GITLAB_"))
    }
    return {
        **env,
        "HOME": str(home),
        "DOCKER_CONFIG": str(home / ".docker"),
        "INVOKE_PIPELINE_CACHE_DIR": str(cache),
        "INVOKE_PIPELINE_FORK_DIR": str(fork.fork_dir),
        "INVOKE_PIPELINE_FORK_URL": str(fork.path),
        "INVOKE_PIPELINE_PREFIX": registry.host,
        "INVOKE_PIPELINE_PLATFORMS": ",".join(platforms),
    }


def release_settings(
    fork: Fork, registry: LocalRegistry, tmp_path: Path, nginx_base: BaseImage
) -> config.Settings:
    cache = tmp_path / "cache"
    cache.mkdir(exist_ok=True)
    for name in ("go-build", "binaries", "node"):
        (fork.shared / name).mkdir(exist_ok=True)
        if not (cache / name).exists():
            (cache / name).symlink_to(fork.shared / name)
    if not (cache / "nginx-base").exists():
        (cache / "nginx-base").symlink_to(nginx_base.store)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = pipeline_env(home)
    return config.Settings.load(
        {
            "cache_dir": str(cache),
            "fork_dir": str(fork.fork_dir),
            "fork_url": str(fork.path),
            "prefix": registry.host,
            "platforms": "linux/amd64",
            "variants": VARIANTS,
        },
        env=env,
    )


def release_options(fork: Fork, tmp_path: Path, **extra: Any) -> release.Options:
    # The fake executor cannot build the conformance suite: test_release_graph.py runs that stage (and fails
    # there, one machine and in shards), test_release_regression.py with a suite it builds.
    extra.setdefault("conformance", "off")
    return release.Options(busybox=str(fork.busybox), report_dir=tmp_path / "reports", **extra)


def tags_in(registry: LocalRegistry) -> dict[str, dict[str, str]]:
    """Every tag of every repository in the registry, and the digest it names."""
    repos = requests.get(f"{registry.url}/v2/_catalog", timeout=10).json().get("repositories") or []
    out: dict[str, dict[str, str]] = {}
    for repo in repos:
        tags = requests.get(f"{registry.url}/v2/{repo}/tags/list", timeout=10).json().get("tags") or []
        out[repo] = {}
        for tag in tags:
            response = requests.head(
                f"{registry.url}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT}, timeout=10
            )
            out[repo][tag] = response.headers["Docker-Content-Digest"]
    return out


def rolling_tags(tags: dict[str, dict[str, str]]) -> dict[str, str]:
    """The rolling tags of a registry snapshot and the digests they name."""
    executor = tags.get("kaniko-executor", {})
    warmer = tags.get("kaniko-warmer", {})
    names = ("latest", "v1", "v1.2", "debug", "v1-debug", "v1.2-debug", "slim", "v1-slim", "v1.2-slim")
    out = {f"executor:{t}": executor[t] for t in names if t in executor}
    out.update({f"warmer:{t}": warmer[t] for t in ("latest", "v1", "v1.2") if t in warmer})
    return out


@pytest.fixture
def env(
    fork: Fork, registry: LocalRegistry, tmp_path: Path, nginx_base: BaseImage, nginx_image: str
) -> Iterator[tuple[config.Settings, str]]:
    """A release's settings (the session's fork, the test's registry and cache) and the nginx test image."""
    require_tool("podman", "build-image and smoke run containers")
    settings = release_settings(fork, registry, tmp_path, nginx_base)
    yield settings, nginx_image
    from pipeline.services.podman import Podman

    podman = Podman(settings.cache_dir)
    built = record.read(settings.record_file).get("build-image") or {}
    for image in (built.get("executor"), built.get("image")):
        if image:
            podman.rmi(str(image))


def verifies(settings: config.Settings, report: release.Report, image: str) -> None:
    """``image`` verifies under the trust config and identity the release ``report`` names."""
    checked = verify_images.run_verify(
        dataclasses.replace(settings, trust_config=Path(report.signature["trust_config"])),
        image=image,
        certificate_identity=localsigstore.LOCAL_IDENTITY,
        certificate_oidc_issuer=localsigstore.LOCAL_ISSUER,
    )
    assert checked.verified, checked.explain()

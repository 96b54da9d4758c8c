"""The executor images the recipe tests run: the fixture fork (tests/support/fixture_fork.py) with the
fake executor (tests/support/fakekaniko) as its cmd/executor, built by the project's own build stage for
linux/amd64 (executor and debug variants; debug has Debian's busybox at /busybox, laid out like
busybox:musl), published by digest to a local registry, and pulled into podman.

This is how test_release.py makes its images too: what the recipes pin is what a release publishes.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.oci.layout import Layout
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.services.distribution import LocalRegistry
from pipeline.services.podman import Podman
from pipeline.source.checkout import Checkout
from pipeline.stages import build, publish
from tests.conftest import require_tool
from tests.support import fakeexecutor, fixture_fork

VARIANTS = ("executor", "debug")


@dataclass(frozen=True)
class Published:
    registry: LocalRegistry
    executor: str  # REPOSITORY@sha256:... of each variant
    debug: str


def _fork(root: Path) -> tuple[Checkout, Path]:
    busybox = root / "busybox"
    digest = fixture_fork.make_busybox_layout(busybox, platforms=("linux/amd64",))
    path = root / "fork"
    fixture_fork.make_fork(path, digest)
    fakeexecutor.install_into_fork(path)
    subprocess.run(["git", "-C", str(path), "tag", "-f", fixture_fork.TAG], check=True, capture_output=True)
    return fixture_fork.checkout_of(path), busybox


@pytest.fixture(scope="session")
def published(
    tmp_path_factory: pytest.TempPathFactory, podman: Podman, go_build_cache: Path
) -> Iterator[Published]:
    """The fixture fork's images, built and published once for the session (the GitLab and Kubernetes
    recipe tests only pull and run them, and push their own builds to other repositories)."""
    require_tool("go", "the recipe tests build the fixture fork's images")
    require_tool("git", "the fixture fork is a git repository")
    require_tool("docker-registry", "the recipe tests publish to a local registry")
    root = tmp_path_factory.mktemp("recipe-images")
    checkout, busybox = _fork(root)
    built = build.build(
        checkout,
        build.BuildSpec(
            out=root / "layout",
            cache_dir=root / "cache",
            platforms=("linux/amd64",),
            variants=VARIANTS,
            busybox=str(busybox),
            gocache=go_build_cache,
        ),
    )
    registry = LocalRegistry(root / "registry").start()
    try:
        layout = Layout.open(built.layout)
        with Client(credentials=Credentials.anonymous()) as client:
            images = publish.publish_images(
                client, layout, publish.images_from_layout(layout), registry.host, rolling=False
            )
        refs = {variant: f"{image.repository}@{image.digest}" for variant, image in images.items()}
        for ref in refs.values():
            podman.pull(ref, tls_verify=False)
        yield Published(registry, refs["executor"], refs["debug"])
        for ref in refs.values():
            podman.rmi(ref)
    finally:
        registry.stop()

"""Session fixtures for the container tests: podman with the project's config, the Debian-made nginx
base (cached across runs in the pipeline's own cache, $XDG_CACHE_HOME/kaniko-pipeline, or
$KANIKO_PIPELINE_TEST_CACHE), and the
nginx test image built from the top-level Dockerfile on that base.

The test image is built with `podman build` from the real Dockerfile (its COPY and RUN run for real),
with `--build-arg BASE_IMAGE=` naming the Debian-made base: the same build argument kaniko gets.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.config import PROJECT_ROOT, default_cache_dir
from pipeline.services import nginxbase
from pipeline.services.podman import Podman
from tests.conftest import require_tool
from tests.support.make_base import ensure_base


def shared_test_cache() -> Path:
    """Where the tests keep what is slow to make and depends only on its recipe (the nginx base): the
    pipeline's own cache directory, following XDG_CACHE_HOME as the pipeline does, so `invoke release`
    after the tests reuses their base instead of making it again (and an empty XDG_CACHE_HOME is a
    first run for both). KANIKO_PIPELINE_TEST_CACHE overrides it."""
    configured = os.environ.get("KANIKO_PIPELINE_TEST_CACHE")
    if configured:
        return Path(configured)
    return default_cache_dir(os.environ)


@pytest.fixture(scope="session")
def go_build_cache() -> Path:
    """Go's build cache for the tests' builds of the fixture fork, in the shared test cache: Go keys each
    entry by the content of what it compiled (sources, flags, toolchain), and several `go` processes may
    use one cache at once, so sharing it changes no binary, only the time. The tests that are about a
    cold cache or a rebuild from nothing (test_caches, `invoke reproduce`) keep their own.

    It is warm before any test uses it (:func:`_warm`)."""
    path = shared_test_cache() / "go-build"
    path.mkdir(parents=True, exist_ok=True)
    _warm(require_tool("go", "the tests compile the fixture fork and the fake executor"), path)
    return path


@pytest.fixture(scope="session")
def go_build_cache_arm64(go_build_cache: Path) -> Path:
    """The same cache, warm for linux/arm64 too: for the tests that cross-compile the fixture fork
    (test_build, the fan-out), so they never compile arm64's standard library twice at once. Only they
    wait for it; the others start on the native warm-up alone."""
    _warm(require_tool("go", "the tests cross-compile the fixture fork"), go_build_cache, "arm64")
    return go_build_cache


def _warm(go: str, gocache: Path, goarch: str | None = None) -> None:
    """Compile the fake executor into ``gocache`` once, under a lock. It imports every package of Go's
    standard library that the fixture fork's binaries import, with the same flags that matter to Go's
    cache (-trimpath, CGO_ENABLED=0), for this machine's platform (or linux/``goarch``), so a later build
    of the fixture fork compiles only its own few packages (measured: 42 s of CPU in an empty cache, 1 s
    after this), and pytest-xdist's workers never compile the same standard library at once. A warm cache
    makes this a 1 s no-op."""
    from tests.support import fakeexecutor

    with open(gocache.parent / ".go-build.lock", "w") as lock, tempfile.TemporaryDirectory() as out:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fakeexecutor.build_binary(go, Path(out) / "executor", gocache, goarch)


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    require_tool("podman", "the container tests run images with podman")
    return Podman(tmp_path_factory.mktemp("podman-cache"))


@pytest.fixture(scope="session")
def nginx_base() -> nginxbase.BaseImage:
    """The base, made once in the shared test cache: where several test processes ask for it at once
    (pytest-xdist's workers), the first makes it and the others wait for it, then find it cached."""
    require_tool("mmdebstrap", "the nginx base image is made from Debian packages")
    return ensure_base(shared_test_cache())


class ImageBuilder:
    """Builds images with `podman build` under unique local names and removes them afterwards."""

    def __init__(self, podman: Podman) -> None:
        self.podman = podman
        self.session = secrets.token_hex(4)
        self.names: list[str] = []

    def name(self, what: str) -> str:
        name = f"localhost/kp-test-{self.session}/{what}:latest"
        self.names.append(name)
        return name

    def build(self, what: str, context: Path, dockerfile: Path, build_args: dict[str, str]) -> str:
        name = self.name(what)
        args = ["build", "--pull=never", "--quiet", "-t", name, "-f", str(dockerfile)]
        for key, value in build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        self.podman.command([*args, str(context)], what=f"podman build of {what}", timeout=600)
        return name

    def cleanup(self) -> None:
        for name in reversed(self.names):
            self.podman.rmi(name)


@pytest.fixture(scope="session")
def images(podman: Podman) -> Iterator[ImageBuilder]:
    builder = ImageBuilder(podman)
    yield builder
    builder.cleanup()


@pytest.fixture(scope="session")
def base_image_name(podman: Podman, nginx_base: nginxbase.BaseImage, images: ImageBuilder) -> str:
    name = images.name("nginx-base")
    podman.load_layout(nginx_base.layout, nginx_base.ref_name, name)
    return name


@pytest.fixture(scope="session")
def nginx_image(images: ImageBuilder, base_image_name: str) -> str:
    """The nginx test image from the top-level Dockerfile, on the Debian-made base."""
    return images.build("nginx", PROJECT_ROOT, PROJECT_ROOT / "Dockerfile", {"BASE_IMAGE": base_image_name})

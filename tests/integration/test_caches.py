"""Every cache the project keeps gives back, on a hit, exactly what the first (cold) run returned.

Each test starts from an empty cache directory, so it is a first run whatever the machine has cached
before; then it asks again and compares the two values whole (a first run that describes its result
differently from a cache hit is the bug these tests exist for).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.golang import compile, toolchain
from pipeline.image import layers
from pipeline.oci.descriptor import Platform
from pipeline.oci.digests import of_file
from pipeline.oci.layout import Layout
from pipeline.progress import Silent
from pipeline.services import nginxbase, npm
from pipeline.source import pinfile
from pipeline.stages import fork
from tests.conftest import require_tool
from tests.support import fixture_fork
from tests.support.debian import bootstrap_tar
from tests.support.gitrepos import UpstreamRepo
from tests.support.sigstore_fixtures import SIGSTORE_JS


def test_fork_clone_cold_then_cached(tmp_path: Path) -> None:
    upstream = UpstreamRepo.create(tmp_path / "upstream")
    upstream.release("v1.25.16", annotated=True)
    current = pinfile.Pin(
        url=str(upstream.path), tag="v1.25.16", commit=upstream.repo.tags["v1.25.16"].commit.hexsha
    )
    cache = tmp_path / "cache"
    patches = tmp_path / "patches"
    patches.mkdir()
    cold = fork.checkout(ref="", pin=current, patches_dir=patches, cache_dir=cache)
    warm = fork.checkout(ref="", pin=current, patches_dir=patches, cache_dir=cache)
    assert warm == cold
    assert len(list((cache / "forks").iterdir())) == 2  # one clone and its lock file, nothing more


@pytest.mark.slow  # a cold Go build on purpose
def test_binaries_and_go_build_cache_cold_then_cached(tmp_path: Path) -> None:
    require_tool("go", "the compile stage runs go build")
    busybox = tmp_path / "busybox"
    checkout = fixture_fork.make_fork(tmp_path / "fork", fixture_fork.make_busybox_layout(busybox))
    go = toolchain.find(checkout.path)
    platform = Platform.parse("linux/amd64")
    cache = tmp_path / "cache"
    cold = compile.compile_platform(checkout, platform, go, cache)
    warm = compile.compile_platform(checkout, platform, go, cache)
    assert warm == cold
    # Without the binaries cache, go's own build cache (warm now) gives the same bytes again.
    shutil.rmtree(cache / "binaries")
    from_go_cache = compile.compile_platform(checkout, platform, go, cache)
    assert from_go_cache.digests == cold.digests


def test_layer_cache_cold_then_cached(tmp_path: Path) -> None:
    binary = tmp_path / "executor"
    binary.write_bytes(b"\x7fELF not really")
    entries = [layers.directory("/kaniko", mode=0o777), layers.file("/kaniko/executor", source=binary)]
    cache = tmp_path / "cache"
    cold = layers.cached(entries, 1_700_000_000, cache)
    warm = layers.cached(entries, 1_700_000_000, cache)
    assert warm == cold
    assert warm.path.read_bytes() == cold.path.read_bytes()


def test_a_cached_layer_is_digested_again_before_use(tmp_path: Path) -> None:
    """Issue 21 item 4: a cached blob changed on disk (same size) is rebuilt, never reused."""
    binary = tmp_path / "executor"
    binary.write_bytes(b"\x7fELF not really")
    entries = [layers.directory("/kaniko", mode=0o777), layers.file("/kaniko/executor", source=binary)]
    cache = tmp_path / "cache"
    cold = layers.cached(entries, 1_700_000_000, cache)
    genuine = cold.path.read_bytes()
    poisoned = bytearray(genuine)
    poisoned[len(poisoned) // 2] ^= 0xFF  # same size: the old check took it
    cold.path.write_bytes(bytes(poisoned))
    again = layers.cached(entries, 1_700_000_000, cache)
    assert again == cold
    assert again.path.read_bytes() == genuine
    assert of_file(again.path)[0] == cold.digest


def test_a_cached_binary_is_hashed_before_use(tmp_path: Path) -> None:
    """Issue 21 item 4: a cached binary that is not what binaries.json records is compiled again."""
    require_tool("go", "the compile stage runs go build")
    checkout = fixture_fork.make_fork(tmp_path / "fork", fixture_fork.make_busybox_layout(tmp_path / "bb"))
    go = toolchain.find(checkout.path)
    platform = Platform.parse("linux/amd64")
    cache = tmp_path / "cache"
    cold = compile.compile_platform(checkout, platform, go, cache)
    cold.paths["executor"].write_bytes(b"#!/bin/sh\necho poisoned\n")  # binaries.json still says the old sum
    said: list[str] = []
    warm = compile.compile_platform(checkout, platform, go, cache, progress=_Recorder(said))
    assert warm.digests == cold.digests
    for name, path in warm.paths.items():
        assert of_file(path)[0] == cold.digests[name], name
    assert any("are not what they recorded; compiling again" in line for line in said), said


class _Recorder(Silent):
    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self.lines = lines

    def warn(self, message: str) -> None:
        self.lines.append(message)


def test_node_packages_cold_then_cached(tmp_path: Path) -> None:
    require_tool("npm", "node packages are installed with npm ci")
    cache = tmp_path / "cache"
    cold = npm.install(SIGSTORE_JS, cache, why="the sigstore-js verifier")
    warm = npm.install(SIGSTORE_JS, cache, why="the sigstore-js verifier")
    assert warm == cold
    assert (cold / "node_modules").is_dir()
    assert [p.name for p in (cache / "node").iterdir()] == [cold.name]  # no half-installed leftovers


def test_nginx_base_layout_is_described_as_the_cache_reads_it(tmp_path: Path) -> None:
    """write_layout() returns the descriptor exactly as a later cache hit reads it from index.json."""
    rootfs = bootstrap_tar(tmp_path / "rootfs.tar")
    written = nginxbase.write_layout(rootfs, tmp_path / "layout")
    read_back = Layout.open(tmp_path / "layout").ref(nginxbase.REF_NAME)
    assert written == read_back
    assert written.annotations["org.opencontainers.image.ref.name"] == nginxbase.REF_NAME


@pytest.mark.slow
def test_nginx_base_cold_then_cached(nginx_base: nginxbase.BaseImage) -> None:
    """The session's base (a first run when the cache is empty, as in CI) equals a cache hit."""
    again = nginxbase.ensure(nginx_base.store.parent)
    assert again == nginx_base


@pytest.mark.slow
def test_a_release_after_the_tests_finds_their_nginx_base(nginx_base: nginxbase.BaseImage) -> None:
    """The tests make the base where the pipeline looks for it, so `invoke release` does not make it again."""
    if os.environ.get("KANIKO_PIPELINE_TEST_CACHE"):
        pytest.skip("KANIKO_PIPELINE_TEST_CACHE moves the tests' cache away from the pipeline's on purpose")
    settings = Settings.load({}, env=os.environ)
    assert nginxbase.ensure(settings.cache_dir) == nginx_base

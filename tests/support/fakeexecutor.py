"""A fixture executor image for the build-image tests: tests/support/fakekaniko (a static Go binary)
as /kaniko/executor in an image laid out like kaniko's (/kaniko, /kaniko/.docker, /workspace,
DOCKER_CONFIG), pushed by digest to a real local registry with the project's registry client."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor, Platform
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Index, Manifest, canonical_json
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference

SOURCE = Path(__file__).parent / "fakekaniko"


def install_into_fork(fork: Path) -> None:
    """Make the fake executor a fixture fork's cmd/executor (every source file of it), committed, so
    what a release of that fork builds and publishes is the executor build-image runs."""
    from tests.support import fixture_fork

    for source in SOURCE.glob("*.go"):
        shutil.copyfile(source, fork / "cmd" / "executor" / source.name)
    fixture_fork.commit_all(fork, "the fake executor as cmd/executor")


REPORT_MARK = "FAKE-KANIKO-REPORT "


def build_binary(go: str, out: Path, gocache: Path, goarch: str | None = None) -> Path:
    """The fake executor (for linux/``goarch``; default this machine's), compiled with Go's build cache at
    ``gocache``."""
    env = {
        **os.environ,
        **({"GOOS": "linux", "GOARCH": goarch} if goarch else {}),
        "CGO_ENABLED": "0",
        "GOTOOLCHAIN": "local",
        "GOFLAGS": "-mod=mod",
        "GOCACHE": str(gocache),
    }
    result = subprocess.run(
        [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(out), "."],
        cwd=SOURCE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"building fakekaniko failed: {result.stderr}")
    return out


def _layer(binary: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in ("kaniko", "kaniko/.docker", "workspace"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o777 if name == "kaniko" else 0o755
            tar.addfile(info)
        data = binary.read_bytes()
        info = tarfile.TarInfo("kaniko/executor")
        info.size = len(data)
        info.mode = 0o755
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_layout(
    binary: Path, root: Path, label: str = "", env: tuple[str, ...] = ()
) -> tuple[Layout, Descriptor]:
    layout = Layout.create(root)
    layer = _layer(binary)
    layer_digest = layout.write_blob(layer)
    config: dict[str, Any] = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": ["/kaniko/executor"],
            "Env": ["PATH=/usr/local/bin:/kaniko", "DOCKER_CONFIG=/kaniko/.docker/", "HOME=/root", *env],
            "WorkingDir": "/workspace",
            "Labels": {"test.kaniko-pipeline.label": label} if label else {},
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }
    config_bytes = canonical_json(config)
    manifest = Manifest(
        config=Descriptor(mediatype.OCI_CONFIG, layout.write_blob(config_bytes), len(config_bytes)),
        layers=[Descriptor(mediatype.OCI_LAYER, layer_digest, len(layer))],
    )
    return layout, layout.write_manifest(manifest)


def push(
    binary: Path,
    root: Path,
    registry_host: str,
    repository: str = "kaniko/fake-executor",
    label: str = "",
    env: tuple[str, ...] = (),
) -> Reference:
    """Push an executor image with ``binary`` as /kaniko/executor; returns its reference by digest.
    A ``label`` makes an image with a digest of its own; ``env`` adds to its environment
    (``FAKEKANIKO_BUILD=1``: --tar-path builds for real, see fakekaniko/tarball.go)."""
    layout, desc = write_layout(binary, root, label, env)
    ref = Reference.parse(f"{registry_host}/{repository}:test")
    with Client(credentials=Credentials.anonymous()) as client:
        result = client.push_layout(layout, desc, ref, tags=["test"])
    return Reference.parse(f"{registry_host}/{repository}@{result.digest}")


def push_index(
    binary: Path,
    root: Path,
    registry_host: str,
    repository: str = "kaniko/fake-executor",
    label: str = "",
    env: tuple[str, ...] = (),
) -> tuple[Reference, Reference]:
    """Push an executor image as a release publishes one: an index with the image for linux/amd64 in it,
    tagged ``test``; returns the index's reference by digest and the platform manifest's. Pulled by
    either, it is the same image in podman's storage (one image id)."""
    layout, desc = write_layout(binary, root, label, env)
    platform = Descriptor(desc.media_type, desc.digest, desc.size, platform=Platform("linux", "amd64"))
    index = layout.write_manifest(Index(manifests=[platform]))
    ref = Reference.parse(f"{registry_host}/{repository}:test")
    with Client(credentials=Credentials.anonymous()) as client:
        result = client.push_layout(layout, index, ref, tags=["test"])
    return (
        Reference.parse(f"{registry_host}/{repository}@{result.digest}"),
        Reference.parse(f"{registry_host}/{repository}@{desc.digest}"),
    )


def reports(stderr: str) -> list[dict[str, Any]]:
    """The fake executor's reports in captured stderr."""
    out = []
    for line in stderr.splitlines():
        if line.startswith(REPORT_MARK):
            out.append(json.loads(line[len(REPORT_MARK) :]))
    return out


@pytest.fixture(scope="session")
def fake_binary(tmp_path_factory: pytest.TempPathFactory, go_build_cache: Path) -> Path:
    """The fake executor, compiled once per session."""
    from tests.conftest import require_tool

    go = require_tool("go", "the fixture executor is a small Go program")
    return build_binary(go, tmp_path_factory.mktemp("fakekaniko") / "executor", go_build_cache)


@pytest.fixture
def fake_executor_image(fake_binary: Path, registry: Any, tmp_path: Path, podman: Any) -> Iterator[Reference]:
    """The fake executor pushed to the test's registry as a conformance-ready image (it builds the cases
    it knows, FAKEKANIKO_BUILD=1); removed from podman's storage afterwards."""
    from tests.conftest import require_tool

    require_tool("buildah", "buildah is the conformance stage's reference builder")
    ref = push(fake_binary, tmp_path / "executor-layout", registry.host, env=("FAKEKANIKO_BUILD=1",))
    yield ref
    podman.rmi(str(ref))

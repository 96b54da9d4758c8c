"""Real bases through one pull-through cache (issue 23 item 2), against real parts: a second local
registry plays Docker Hub ("upstream", holding a ``library/busybox`` this test pushes), the stage puts
the distribution registry in proxy mode in front of it, and the fixture executor (FAKEKANIKO_PULL=1:
it pulls its base through --registry-mirror, see tests/support/fakekaniko/pull.go) and real buildah
both build a case whose base is pinned by digest. The case runs and matches, the cache's access log
shows that both builders read that very manifest through it, a re-test keeps the pinned case and
builds again the one whose tag moved upstream (kept results are keyed by the bases' digests), and
``--bases upstream`` with an upstream that does not answer fails with a clear message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.image import layers
from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.oci.layout import Layout
from pipeline.oci.manifest import Manifest, canonical_json
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.services.distribution import LocalRegistry, free_port
from pipeline.services.podman import Podman
from pipeline.stages.conformance import stage
from pipeline.stages.conformance.upstream import Upstream
from tests.conftest import require_tool
from tests.support import fakeexecutor
from tests.support.cli import run_invoke

pytestmark = pytest.mark.slow


@pytest.fixture
def pulling_executor(fake_binary: Path, registry: Any, tmp_path: Path, podman: Podman) -> Iterator[Reference]:
    """The fixture executor that builds on a base it pulls through --registry-mirror."""
    require_tool("buildah", "buildah is the conformance stage's reference builder")
    ref = fakeexecutor.push(
        fake_binary,
        tmp_path / "executor-layout",
        registry.host,
        repository="kaniko/fake-executor-pull",
        env=("FAKEKANIKO_BUILD=1", "FAKEKANIKO_PULL=1"),
    )
    yield ref
    podman.rmi(str(ref))


@pytest.fixture
def upstream_registry(tmp_path: Path) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path / "upstream") as registry:
        yield registry


def _push_base(upstream: LocalRegistry, root: Path, text: str) -> str:
    """A small busybox-shaped image as ``library/busybox:latest`` on the upstream; its manifest digest."""
    layout = Layout.create(root)
    built = layers.build(
        [layers.directory("/etc", 0o755), layers.file("/etc/upstream.txt", data=text.encode())],
        1700000000,
        root.parent / f"{root.name}.tar.gz",
    )
    digest, size = layout.add_blob_file(built.path)
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["sh"], "Labels": {"from": "upstream"}},
            "rootfs": {"type": "layers", "diff_ids": [built.diff_id]},
            "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "the test's upstream"}],
        }
    )
    manifest = Manifest(
        config=Descriptor(mediatype.OCI_CONFIG, layout.write_blob(config), len(config)),
        layers=[Descriptor(mediatype.OCI_LAYER_GZIP, digest, size)],
    )
    desc = layout.write_manifest(manifest)
    with Client(credentials=Credentials.anonymous()) as client:
        pushed = client.push_layout(
            layout, desc, Reference.parse(f"{upstream.host}/library/busybox:latest"), tags=["latest"]
        )
    return str(pushed.digest)


def _case(root: Path, name: str, dockerfile: str, checks: list[dict[str, Any]] | None = None) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "Dockerfile").write_text(dockerfile)
    (root / name / "hello.txt").write_text("hello\n")
    if checks:
        (root / name / "case.json").write_text(json.dumps({"checks": checks}))


def test_a_digest_pinned_base_runs_and_both_builders_read_it_through_the_cache(
    pulling_executor: Reference,
    upstream_registry: LocalRegistry,
    tmp_path: Path,
    cache_dir: Path,
    podman: Podman,
) -> None:
    pinned = _push_base(upstream_registry, tmp_path / "base-one", "one\n")
    cases = tmp_path / "cases"
    _case(
        cases,
        "pinned",
        f"FROM busybox@{pinned}\nCOPY hello.txt /hello.txt\n",
        [{"path": "/etc/upstream.txt", "content": "one\n"}, {"path": "/hello.txt", "content": "hello\n"}],
    )
    _case(cases, "tagged", "FROM busybox:latest\nCOPY hello.txt /hello.txt\n")
    _case(cases, "elsewhere", "FROM quay.io/team/base:1\nCOPY hello.txt /hello.txt\n")
    _case(cases, "not-upstream", "FROM debian:12.10\nCOPY hello.txt /hello.txt\n")

    offline = stage.plan(
        executors={"executor": pulling_executor}, cases_dir=cases, quick=False, reference="buildah"
    )
    assert {c.name: c.skip for c in offline.cases}["pinned"] == (
        f"its base busybox@{pinned} is pinned by a digest that cannot be reproduced offline"
    )

    real = Upstream(upstream_registry.url)
    plan = stage.plan(
        executors={"executor": pulling_executor},
        cases_dir=cases,
        quick=False,
        reference="buildah",
        real_bases=real,
    )
    result = stage.execute(plan, podman=podman, cache_dir=cache_dir)
    by_name = {case.name: case for case in result.cases}
    assert by_name["pinned"].status == "passed", by_name["pinned"]
    assert by_name["pinned"].known == {"buildah-version-label": 1}  # the base's files and config matched
    assert by_name["tagged"].status == "passed", by_name["tagged"]
    assert by_name["elsewhere"].status == "skipped"
    assert "is not a Docker Hub image" in by_name["elsewhere"].reason
    assert by_name["not-upstream"].reason == (
        f"its base docker.io/library/debian:12.10 is not on {upstream_registry.url}"
    )
    assert result.bases == f"real bases from {upstream_registry.url} through a pull-through cache"

    # both builders read the pinned manifest (and its layer) through the cache, each as itself
    readers = {
        agent: kinds
        for agent, kinds in result.pulls.items()
        if f"library/busybox@{pinned}" in kinds["manifests"]
    }
    assert sorted(agent.split("/")[0] for agent in readers) == ["Buildah", "Go-http-client"], readers
    assert all(
        any(blob.startswith("library/busybox@sha256:") for blob in k["blobs"]) for k in readers.values()
    )
    assert result.to_dict()["pulls"] == result.pulls

    # the tag moves upstream: the tagged case is built again, the pinned one is kept (keyed by digest)
    moved = _push_base(upstream_registry, tmp_path / "base-two", "two\n")
    assert moved != pinned
    again = {case.name: case for case in stage.execute(plan, podman=podman, cache_dir=cache_dir).cases}
    assert again["pinned"].status == "passed" and again["pinned"].cached
    assert again["tagged"].status == "passed" and not again["tagged"].cached


def test_bases_upstream_with_an_upstream_that_does_not_answer_fails_clearly(tmp_path: Path) -> None:
    cases = tmp_path / "cases"
    _case(cases, "pinned", f"FROM busybox@sha256:{'c' * 64}\nCOPY hello.txt /hello.txt\n")
    dead = f"http://127.0.0.1:{free_port()}"
    executor = f"127.0.0.1:{free_port()}/kaniko/executor@sha256:{'a' * 64}"
    args = ["conformance", "--executor", executor, "--cases", str(cases), "--reference", "none"]
    done = run_invoke([*args, "--bases", "upstream", "--upstream", dead], cache=tmp_path / "cache")
    assert done.returncode == 1, done.stderr[-2000:]
    assert f"the upstream registry {dead} does not answer /v2/" in done.stderr
    assert "--bases stand-ins" in done.stderr and "Traceback" not in done.stderr
    refused = run_invoke([*args, "--bases", "stand-ins", "--upstream", dead], cache=tmp_path / "cache")
    assert refused.returncode == 2 and "--upstream has no use with --bases stand-ins" in refused.stderr
    unknown = run_invoke([*args, "--bases", "network"], cache=tmp_path / "cache")
    assert unknown.returncode == 2 and "--bases 'network' is not known" in unknown.stderr

"""The conformance stage against the real fork's release (KANIKO_FORK_URL: its URL or a local mirror):
the four variants built by the build stage (debug with the busybox-static stand-in), published to a local
registry, each proven on the repository's suite in podman under the README profile and compared with
buildah. KANIKO_CONFORMANCE=full adds the fork's own integration Dockerfiles (reported, not gating)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pipeline.config import PROJECT_ROOT
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.services.distribution import LocalRegistry
from pipeline.services.podman import Podman
from pipeline.source import pinfile
from pipeline.stages import build, fork, publish
from pipeline.stages.conformance import stage
from tests.conftest import require_tool
from tests.support import fixture_fork
from tests.support.images import shared_test_cache

VARIANTS = ("executor", "debug", "slim", "warmer")


def test_every_variant_of_the_real_release_passes_the_suite_against_buildah(
    fork_url: str, podman: Podman, registry: LocalRegistry, tmp_path: Path
) -> None:
    require_tool("go", "the fork is compiled")
    require_tool("buildah", "buildah is the reference builder")
    full = os.environ.get("KANIKO_CONFORMANCE", "quick") == "full"
    pin = pinfile.load(PROJECT_ROOT / "fork" / "pin.json")
    cache = shared_test_cache()
    checkout = fork.checkout(
        ref=pin.tag, pin=pin, patches_dir=PROJECT_ROOT / "fork" / "patches", cache_dir=cache, url=fork_url
    )
    busybox = tmp_path / "busybox"
    fixture_fork.make_busybox_layout(busybox, ("linux/amd64",))
    built = build.build(
        checkout,
        build.BuildSpec(
            out=tmp_path / "layout",
            cache_dir=cache,
            gocache=cache / "go-build",
            platforms=["linux/amd64"],
            variants=VARIANTS,
            busybox=str(busybox),
            pinned_url=pin.url,
        ),
    )
    layout, images = build.layout_images(built.to_dict())
    with Client(credentials=Credentials.anonymous()) as client:
        published = publish.publish_images(
            client, layout, images, f"{registry.host}/kp", version=built.version, rolling=False
        )
    refs = {variant: f"{image.repository}@{image.digest}" for variant, image in published.items()}
    plan = stage.plan(
        executors=stage.parse_executors("", VARIANTS, refs),
        cases_dir=None,
        quick=not full,
        reference="buildah",
        fork_checkout=checkout.path if full else None,
    )
    result = stage.execute(plan, podman=podman, cache_dir=cache)
    try:
        sys.stderr.write(result.text() + "\n")
        (tmp_path / "conformance.json").write_text(json.dumps(result.to_dict(), indent=1))
        by_key = {(case.name, case.variant): case for case in result.cases}
        assert result.ok, [c.to_dict() for c in result.failed()]
        for proof in (
            ("gitlab-script", "debug"),
            ("warm-cache", "warmer"),
            ("credential-helpers", "executor"),
        ):
            assert by_key[proof].status == "passed", by_key[proof]
        for variant in ("executor", "debug") + (("slim",) if full else ()):
            assert by_key[("run-forms", variant)].status == "passed"
        assert result.matrix["run-forms"] == "README profile"
        if full:
            assert result.matrix["run-as-user"] == "README profile + SETUID+SETGID"
            fork_cases = [c for c in result.cases if c.name.startswith("fork-")]
            assert fork_cases and any(c.status == "passed" for c in fork_cases)
            assert all(c.reason for c in fork_cases if c.status == "skipped")
    finally:
        for ref in refs.values():
            podman.rmi(ref)

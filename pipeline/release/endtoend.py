"""``invoke test-e2e``: the release on embedded defaults against a fresh local registry."""

from __future__ import annotations

import contextlib
import platform as host_platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import record
from pipeline.errors import PipelineError
from pipeline.progress import Progress, Silent
from pipeline.release.context import Options
from pipeline.release.flow import run
from pipeline.release.report import Report
from pipeline.release.resolution import remote_tags
from pipeline.source import pinfile
from pipeline.urls import redact

if TYPE_CHECKING:
    from pipeline.config import Settings


SHARED_CACHES = ("forks", "go-build", "binaries", "layers", "nginx-base", "node", "conformance")


def native_platform() -> str:
    machine = host_platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return f"linux/{arch}"


@dataclass
class E2EResult:
    report: Report
    registry: str
    kept: bool
    variants: list[str]
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.report.ok,
            "executor": self.report.executor,
            "image": self.report.image,
            "base": self.report.base,
            "stages": self.report.stage_seconds(),
            "seconds": round(sum(self.report.stage_seconds().values()), 2),
            "variants": self.variants,
            "registry": self.registry if self.kept else None,
            "note": self.note,
            "report": self.report.files.get("markdown"),
        }


def e2e(
    settings: Settings,
    *,
    keep: bool = False,
    platforms: Sequence[str] | None = None,
    options: Options | None = None,
    progress: Progress | None = None,
) -> E2EResult:
    """`invoke test-e2e`: the release on embedded defaults against a fresh local registry in a temporary
    state directory, then clean up everything it started (or keep the registry running). ``options``: the
    release's (busybox, base image, conformance mode and bases; default: the quick conformance suite)."""
    from pipeline.services.distribution import LocalRegistry
    from pipeline.services.podman import Podman

    progress = progress or Silent()
    pin = pinfile.load(settings.pin_file)
    url = settings.fork_url or pin.url
    started = time.monotonic()
    remote_tags(url)  # fails in seconds, with the way to use a mirror, when the fork is unreachable
    progress.info(f"the fork at {redact(url)} answers ({time.monotonic() - started:.1f} s)")

    state = Path(tempfile.mkdtemp(prefix="kaniko-e2e-"))
    cache = state / "cache"
    cache.mkdir()
    for name in SHARED_CACHES:
        shared = settings.cache_dir / name
        shared.mkdir(parents=True, exist_ok=True)
        (cache / name).symlink_to(shared, target_is_directory=True)
    registry = LocalRegistry(state / "registry", detach=keep)
    registry.start()
    progress.step(f"test-e2e: fresh local registry at {registry.host} (state {state})")
    e2e_settings = replace(
        settings,
        cache_dir=cache,
        fork_url=url,
        prefix=registry.host,
        platforms=tuple(platforms or (native_platform(),)),
        trust_config=None,
        env={k: v for k, v in settings.env.items() if k != "SIGSTORE_ID_TOKEN"},
    )
    report: Report | None = None
    try:
        report = run(
            e2e_settings,
            replace(options or Options(conformance="quick"), report_dir=settings.cache_dir / "runs" / "e2e"),
            progress=progress,
        )
    finally:
        podman = None
        with contextlib.suppress(PipelineError):
            podman = Podman(cache, progress=progress)
        if podman is not None:
            data = record.read(e2e_settings.record_file)
            pulled = [data.get("build-image", {}).get("executor"), data.get("build-image", {}).get("image")]
            for image in filter(None, pulled):  # unless another run on the machine still uses them
                podman.discard(str(image))
        if keep:
            progress.step(
                f"test-e2e: the local registry keeps running at {registry.host} (pid {registry.pid}; "
                f"stop it with `kill {registry.pid}`; its storage is {registry.root})"
            )
            registry.process = None
        else:
            registry.stop()
            shutil.rmtree(state, ignore_errors=True)
    assert report is not None
    if "debug" in report.variants:
        busybox = options.busybox if options is not None else None
        note = f"debug built with busybox from {busybox or e2e_settings.registry_mirror}"
    else:
        note = " ".join(report.notes) or "debug not built: not in pipeline.variants"
    return E2EResult(report, registry.host, keep, report.variants, note)

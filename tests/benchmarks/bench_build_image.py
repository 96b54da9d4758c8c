"""Benchmark: the kaniko and smoke stages with a real executor binary, on one machine.

Usage: python tests/benchmarks/bench_build_image.py /path/to/kaniko/executor [CACHE_DIR]
Starts a local registry, pushes an executor image made from the binary and the Debian-made nginx base
(built first if CACHE_DIR has none: about 60 s), then prints the seconds of each stage: base (cached),
executor push, base push, build-image (kaniko in podman, through the docker.io mirror) and smoke.
"""

# ruff: noqa: E402  (sys.path is set before the project is imported)
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipeline.registry.client import Client  # noqa: E402
from pipeline.registry.credentials import Credentials  # noqa: E402
from pipeline.registry.reference import Reference  # noqa: E402
from pipeline.services import (
    kaniko,  # noqa: E402
    nginxbase,  # noqa: E402
)
from pipeline.services.distribution import LocalRegistry  # noqa: E402
from pipeline.services.podman import Podman  # noqa: E402
from pipeline.stages import (
    build_image,  # noqa: E402
    smoke,  # noqa: E402
)
from tests.support import fakeexecutor  # noqa: E402
from tests.support.images import shared_test_cache  # noqa: E402


def main(binary: Path, cache: Path) -> dict[str, object]:
    times: dict[str, float] = {}

    def timed(name: str, start: float) -> None:
        times[name] = round(time.perf_counter() - start, 2)

    with (
        tempfile.TemporaryDirectory(prefix="bench-kaniko-") as tmp,
        LocalRegistry(Path(tmp) / "registry") as reg,
    ):
        start = time.perf_counter()
        base = nginxbase.ensure(cache)
        timed("base", start)
        start = time.perf_counter()
        executor = fakeexecutor.push(binary, Path(tmp) / "executor", reg.host, "kaniko/executor")
        timed("executor_push", start)
        start = time.perf_counter()
        with Client(credentials=Credentials.anonymous()) as client:
            pushed = nginxbase.publish(base, client, reg.host)
        timed("base_push", start)
        podman = Podman(Path(tmp) / "cache")
        request = kaniko.BuildRequest(
            executor=executor,
            destination=Reference.parse(f"{reg.host}/nginx/kaniko-nginx:bench"),
            context=ROOT,
            registry_mirror=reg.host,
            base_image=nginxbase.docker_hub_name(pushed.digest),
        )
        start = time.perf_counter()
        built = build_image.build_image(podman, request, credentials=Credentials.anonymous(), verify=None)
        timed("build_image", start)
        start = time.perf_counter()
        checked = smoke.check_image(podman, built.image)
        timed("smoke", start)
        podman.rmi(built.image)
        podman.rmi(str(executor))
    return {"ok": checked.ok, "rootless": podman.rootless, "image": built.image, "seconds": times}


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cache_dir = Path(sys.argv[2]) if len(sys.argv) > 2 else shared_test_cache()
    print(json.dumps(main(Path(sys.argv[1]), cache_dir), indent=2))

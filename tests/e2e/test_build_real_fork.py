"""The build stage against the real kaniko fork (KANIKO_FORK_URL: its URL or a local mirror).

All four variants for linux/amd64. Offline there is no Docker Hub, so debug gets the fixture busybox
(Debian's busybox-static laid out like busybox:musl) through the --busybox override instead of the
pinned busybox:musl image; executor, slim and warmer are exactly what the Dockerfile defines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from pipeline.config import PROJECT_ROOT
from pipeline.source import pinfile
from pipeline.stages import build, fork
from tests.conftest import require_tool
from tests.support import fixture_fork

pytestmark = pytest.mark.e2e
VARIANTS = ("executor", "debug", "slim", "warmer")


@pytest.fixture(scope="module")
def fork_url() -> str:
    url = os.environ.get("KANIKO_FORK_URL", "").strip()
    if not url:
        pytest.skip("KANIKO_FORK_URL is not set (the real fork's URL or a local mirror of it)")
    return url


def test_real_fork_builds_reproducibly_and_runs(fork_url: str, tmp_path: Path) -> None:
    require_tool("go", "the fork is compiled")
    podman = require_tool("podman", "the built executor image is run")
    require_tool("runc", "podman runs containers with runc here")
    pin = pinfile.load(PROJECT_ROOT / "fork" / "pin.json")
    checkout = fork.checkout(
        ref=pin.tag,
        pin=pin,
        patches_dir=PROJECT_ROOT / "fork" / "patches",
        cache_dir=tmp_path / "cache",
        url=fork_url,
    )
    busybox = tmp_path / "busybox"
    fixture_fork.make_busybox_layout(busybox, ("linux/amd64",))
    gocache = tmp_path / "gocache"  # shared: the second build recompiles from a warm Go cache
    results = [
        build.build(
            checkout,
            build.BuildSpec(
                out=tmp_path / f"out{n}",
                cache_dir=tmp_path / f"cache{n}",
                gocache=gocache,
                platforms=["linux/amd64"],
                variants=VARIANTS,
                busybox=str(busybox),
                pinned_url=pin.url,
            ),
        )
        for n in (1, 2)
    ]
    first, second = (r.to_dict() for r in results)
    assert first["version"] == checkout.version
    assert sorted(first["images"]) == sorted(VARIANTS)
    assert first["images"] == second["images"]

    conf = tmp_path / "containers.conf"
    conf.write_text('[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n')
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    short = tempfile.mkdtemp(prefix="pr-", dir="/tmp")  # podman wants storage paths under 50 characters
    base = [podman, "--root", short + "/root", "--runroot", short + "/run", "--storage-driver", "vfs"]
    try:
        for variant in ("executor", "slim", "debug"):
            out = subprocess.run(
                [
                    *base,
                    "--runtime",
                    "runc",
                    "run",
                    "--rm",
                    "--quiet",
                    f"oci:{first['layout']}:{variant}",
                    "version",
                ],
                capture_output=True,
                text=True,
                env=env,
                check=False,
                timeout=600,
            )
            assert out.returncode == 0, out.stderr
            assert out.stdout.strip() == f"Kaniko version :  {checkout.tag}"
        out = subprocess.run(
            [*base, "--runtime", "runc", "run", "--rm", "--quiet", f"oci:{first['layout']}:warmer", "--help"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=600,
        )
        assert out.returncode == 0, out.stderr
        assert "cache warmer" in out.stdout
    finally:
        subprocess.run([*base, "system", "reset", "--force"], capture_output=True, env=env, check=False)
        shutil.rmtree(short, ignore_errors=True)

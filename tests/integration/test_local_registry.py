"""The embedded local registry: started, reused, stopped by pid; and its invoke tasks."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pipeline.errors import ToolError
from pipeline.services import distribution
from tests.conftest import require_tool
from tests.support.cli import run_invoke


@pytest.fixture
def embedded_cache(cache_dir: Path) -> Iterator[Path]:
    require_tool("docker-registry", "the embedded registry is the distribution registry")
    try:
        yield cache_dir
    finally:
        distribution.down(cache_dir)


def _alive(pid: int) -> bool:
    return distribution._pid_alive(pid)


def test_up_reuses_and_down_stops(embedded_cache: Path) -> None:
    port = distribution.free_port()
    first = distribution.up(embedded_cache, port=port)
    assert first.started and first.port == port and first.host == f"127.0.0.1:{port}"
    assert requests.get(f"{first.url}/v2/", timeout=5).status_code == 200
    state = distribution.state_dir(embedded_cache)
    assert (state / "registry.pid").read_text().strip() == str(first.pid)
    assert (state / "registry.port").read_text().strip() == str(port)
    assert (state / "storage").is_dir() and (state / "config.yml").is_file()

    again = distribution.up(embedded_cache, port=port)
    assert not again.started and again.pid == first.pid
    assert distribution.status(embedded_cache) == again

    assert distribution.down(embedded_cache) is True
    assert not _alive(first.pid)
    assert distribution.status(embedded_cache) is None
    assert distribution.down(embedded_cache) is False


def test_taken_port_falls_back_to_a_free_one(embedded_cache: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        state = distribution.up(embedded_cache, port=taken)
        assert state.port != taken
        assert requests.get(f"{state.url}/v2/", timeout=5).status_code == 200


def test_stale_pid_file_is_replaced(embedded_cache: Path) -> None:
    state = distribution.state_dir(embedded_cache)
    state.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (state / "registry.pid").write_text(f"{dead.pid}\n")
    (state / "registry.port").write_text(f"{distribution.free_port()}\n")
    assert distribution.status(embedded_cache) is None
    fresh = distribution.up(embedded_cache, port=distribution.free_port())
    assert fresh.started and fresh.pid != dead.pid


def test_content_survives_a_restart(embedded_cache: Path) -> None:
    port = distribution.free_port()
    state = distribution.up(embedded_cache, port=port)
    start = requests.post(f"{state.url}/v2/keep/me/blobs/uploads/", timeout=5)
    digest = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"  # "hello"
    put = requests.put(start.headers["Location"] + f"&digest={digest}", data=b"hello", timeout=5)
    assert put.status_code == 201
    distribution.down(embedded_cache)
    state = distribution.up(embedded_cache, port=port)
    assert requests.head(f"{state.url}/v2/keep/me/blobs/{digest}", timeout=5).status_code == 200


def test_missing_binary_says_invoke_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match="invoke setup"):
        distribution.LocalRegistry(tmp_path / "r").start()


def test_registry_up_and_down_tasks(embedded_cache: Path) -> None:
    port = distribution.free_port()
    up = run_invoke(["registry.up", "--port", str(port), "--json"], cache=embedded_cache, timeout=60)
    assert up.returncode == 0, up.stderr
    state = json.loads(up.stdout)
    assert state["url"] == f"http://127.0.0.1:{port}" and state["started"] is True
    assert requests.get(f"{state['url']}/v2/", timeout=5).status_code == 200
    again = json.loads(run_invoke(["registry.up", "--json"], cache=embedded_cache, timeout=60).stdout)
    assert again["pid"] == state["pid"] and again["started"] is False
    down = run_invoke(["registry.down", "--json"], cache=embedded_cache, timeout=60)
    assert json.loads(down.stdout) == {"stopped": True}
    assert not _alive(state["pid"])


def test_the_release_says_it_publishes_to_the_embedded_registry_only_when_it_publishes(
    embedded_cache: Path,
) -> None:
    """Choosing the destination is silent (an up-to-date release publishes nothing); `invoke publish`
    and the release's publish stage say where the images go."""
    import io

    from pipeline import config
    from pipeline.progress import Progress
    from pipeline.release import plan
    from pipeline.stages import publish

    settings = config.Settings.load({"cache_dir": str(embedded_cache)}, env={"HOME": str(embedded_cache)})
    quiet = io.StringIO()
    prefix, embedded = plan.destination(settings, False, Progress(quiet))
    assert embedded and prefix.startswith("127.0.0.1:")
    assert "publishing to the embedded local registry" not in quiet.getvalue()

    said = io.StringIO()
    assert publish.destination_prefix(settings, False, Progress(said)) == (prefix, True)
    assert f"publishing to the embedded local registry at {prefix}" in said.getvalue()

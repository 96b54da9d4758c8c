"""The project's containers.conf and podman's run arguments (pure logic)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import ToolError
from pipeline.services.podman import Mount, Podman, RunSpec, containers_conf


def test_containers_conf_clears_default_ulimits_and_names_the_runtime() -> None:
    text = containers_conf("runc")
    assert "[containers]\n" in text and "default_ulimits = []\n" in text
    assert '[engine]\nruntime = "runc"\n' in text
    assert "runtime" not in containers_conf(None).split("[engine]", 1)[1]


def test_run_spec_argv_is_explicit_about_security() -> None:
    spec = RunSpec(
        image="img@sha256:" + "0" * 64,
        args=["--flag"],
        name="n",
        detach=True,
        cap_add=("CHOWN",),
        mounts=(Mount(Path("/a"), "/b"), Mount(Path("/c"), "/d", read_only=False)),
        publish=("127.0.0.1::8080",),
        network="host",
    )
    assert spec.argv() == [
        "run",
        "--pull=never",
        "--name=n",
        "--detach",
        "--cap-drop=ALL",
        "--cap-add=CHOWN",
        "--security-opt=no-new-privileges",
        "--volume=/a:/b:ro",
        "--volume=/c:/d:rw",
        "--publish=127.0.0.1::8080",
        "--network=host",
        "img@sha256:" + "0" * 64,
        "--flag",
    ]


def test_missing_podman_says_to_run_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError, match="invoke setup"):
        Podman(tmp_path)

"""podman and buildah take $DOCKER_CONFIG/config.json as their auth file and refuse to pull when it is
missing: a DOCKER_CONFIG with no config.json is left out of their environment (tests/integration/
test_release_graph.py runs the jobs with such a DOCKER_CONFIG, as a CI job may have one)."""

from __future__ import annotations

from pathlib import Path

from pipeline.services import buildah
from pipeline.services.process import containers_env


def test_a_docker_config_without_config_json_is_left_out_and_one_with_it_kept(tmp_path: Path) -> None:
    empty, kept = tmp_path / "empty", tmp_path / "kept"
    empty.mkdir()
    kept.mkdir()
    (kept / "config.json").write_text('{"auths": {}}')
    assert containers_env({"DOCKER_CONFIG": str(empty), "PATH": "/bin"}) == {"PATH": "/bin"}
    assert containers_env({"DOCKER_CONFIG": str(kept)}) == {"DOCKER_CONFIG": str(kept)}
    assert "DOCKER_CONFIG" not in buildah.environment(tmp_path, {"DOCKER_CONFIG": str(tmp_path / "none")})

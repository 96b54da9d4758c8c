"""The podman wrapper against real podman."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.errors import ContainerError
from pipeline.services.podman import Podman


def test_every_call_uses_the_projects_containers_conf(podman: Podman) -> None:
    assert podman.env["CONTAINERS_CONF"] == str(podman.conf_path)
    assert "default_ulimits = []" in podman.conf_path.read_text()
    assert podman.rootless == (os.geteuid() != 0)
    assert ("rootless" if podman.rootless else "rootful") in podman.describe()


def test_failures_quote_podmans_stderr(podman: Podman) -> None:
    with pytest.raises(ContainerError) as info:
        podman.inspect("kp-no-such-container-here")
    assert "kp-no-such-container-here" in info.value.message
    assert "no such" in info.value.message.lower()
    podman.rm("kp-no-such-container-here")  # removing what is not there is quiet


def test_conf_is_rewritten_when_it_changed(podman: Podman, tmp_path: Path) -> None:
    first = Podman(tmp_path)
    first.conf_path.write_text("[containers]\n")
    second = Podman(tmp_path)
    assert "default_ulimits = []" in second.conf_path.read_text()


def test_streamed_output_loses_colour_codes_when_stderr_is_not_a_terminal(
    podman: Podman, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kaniko logs in colour by default; a CI log or a file gets the same lines without escape codes."""
    import secrets

    from pipeline.services.podman import RunSpec
    from tests.support import fixture_fork

    fixture_fork.make_busybox_layout(tmp_path / "busybox", platforms=("linux/amd64",))
    name = f"localhost/kp-test-ansi-{secrets.token_hex(4)}:latest"
    podman.load_layout(tmp_path / "busybox", "musl", name)
    try:
        script = (
            r"printf '\033[36mINFO\033[0m[0000] Retrieving image\n'; printf '\033[31mERRO\033[0m boom\n' >&2"
        )
        spec = RunSpec(image=name, args=("/bin/sh", "-c", script), remove=True)
        result = podman.run(spec, what="colour test", stream=True)
    finally:
        podman.rmi(name)
    err = capsys.readouterr().err
    assert "INFO[0000] Retrieving image" in err and "ERRO boom" in err
    assert "\x1b" not in err
    # the streamed lines' tail comes back for error messages, also without escape codes
    assert result.stderr.splitlines()[-2:] == ["INFO[0000] Retrieving image", "ERRO boom"]

"""The podman wrapper against real podman."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.container import Podman
from pipeline.errors import ContainerError


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

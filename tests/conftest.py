"""Shared fixtures. Fixtures that start real services live in tests/support/ and are imported here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A private cache directory, so tests never touch the user's cache."""
    path = tmp_path / "cache"
    path.mkdir()
    return path


def require_tool(name: str, why: str) -> str:
    """The path of an external program the test needs.

    Under CI a missing program is a failure (`.ci/run` installs everything); elsewhere the test is
    skipped with the reason and the command that installs it.
    """
    from pipeline.errors import ToolError
    from pipeline.system import require_program

    try:
        return require_program(name, why)
    except ToolError as exc:
        message = f"{exc.message}; {exc.hint}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


# podman, the Debian-made nginx base (cached) and images built from the Dockerfile (tests/support/images.py).
from tests.support.images import (  # noqa: E402, F401
    base_image_name,
    images,
    nginx_base,
    nginx_image,
    podman,
)

# Real registries, the test token server and the fault-injecting proxy (tests/support/registries.py).
from tests.support.registries import (  # noqa: E402, F401
    fault_proxy,
    fault_proxy_factory,
    registry,
    registry_factory,
    registry_htpasswd,
    token_registry,
)

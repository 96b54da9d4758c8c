"""Shared fixtures. Fixtures that start real services live in tests/support/ and are imported here."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

# Strict mode: a missing program or rootless user is a failure, not a skip. `.ci/run` sets it for its
# prepared machine; `CI` does not, since every CI service sets that, also where nothing was prepared.
STRICT_ENV = "KANIKO_PIPELINE_STRICT"
STRICT = os.environ.get(STRICT_ENV, "") == "1"


def missing(message: str) -> NoReturn:
    """What the machine lacks for a test: a failure in strict mode, else a skip that says why."""
    if STRICT:
        pytest.fail(f"{message} ({STRICT_ENV}=1: nothing may be missing)")
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """Fails the session (an error at teardown) if the tests leave processes, podman containers or
    podman images behind. Set up before every other session fixture, so it is torn down after them.

    Processes are matched exactly (a token in their environment). Podman's storage is the machine's:
    where several test sessions share it at once, KANIKO_PIPELINE_TEST_SHARED_PODMAN=1 reports new
    images and containers as a warning instead, since they may be another session's.
    """
    from tests.support.leftovers import Snapshot

    snapshot = Snapshot.take()
    yield
    left = snapshot.leftovers()
    if os.environ.get("KANIKO_PIPELINE_TEST_SHARED_PODMAN") == "1":
        shared = [item for item in left if item.startswith("podman ")]
        if shared:
            warnings.warn("podman storage changed during the session:\n" + "\n".join(shared), stacklevel=1)
        left = [item for item in left if not item.startswith("podman ")]
    if left:
        pytest.fail("the tests left these behind:\n" + "\n".join(left), pytrace=False)


@pytest.fixture(autouse=True)
def close_git_repos() -> Iterator[None]:
    """Closes the test repositories a test made (tests/support/gitrepos.py), and with them GitPython's
    `git cat-file` processes, which otherwise live until garbage collection."""
    yield
    from tests.support.gitrepos import close_all

    close_all()


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A private cache directory, so tests never touch the user's cache."""
    path = tmp_path / "cache"
    path.mkdir()
    return path


def require_tool(name: str, why: str) -> str:
    """The path of an external program the test needs.

    In strict mode (KANIKO_PIPELINE_STRICT=1, set by `.ci/run`, which installs everything) a missing
    program is a failure; elsewhere the test is skipped with the reason and the command that installs it.
    """
    from pipeline.errors import ToolError
    from pipeline.system import require_program

    try:
        return require_program(name, why)
    except ToolError as exc:
        missing(f"{exc.message}; {exc.hint}")


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

"""Shared fixtures. Fixtures that start real services live in tests/support/ and are imported here."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


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

# The fixture executor images published to a local registry, for the recipe tests (tests/support/recipeimages.py).
from tests.support.recipeimages import published  # noqa: E402, F401

# Real registries, the test token server and the fault-injecting proxy (tests/support/registries.py).
from tests.support.registries import (  # noqa: E402, F401
    fault_proxy,
    fault_proxy_factory,
    registry,
    registry_factory,
    registry_htpasswd,
    token_registry,
)

# The fixture fork a release runs on, and a release's settings with the nginx test image
# (tests/support/releasefork.py).
from tests.support.releasefork import env, fork  # noqa: E402, F401

# The local Sigstore instance, a second one with other keys, node packages and sigstore-js
# (tests/support/sigstore.py): one of each per session.
from tests.support.sigstore import (  # noqa: E402, F401
    local_sigstore,
    node_cache,
    other_sigstore,
    sigstore_js,
)

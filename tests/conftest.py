"""Shared fixtures. Fixtures that start real services live in tests/support/ and are imported here."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support.leftovers import Snapshot

# Strict mode: a missing program or rootless user is a failure, not a skip. `.ci/run` sets it for its
# prepared machine; `CI` does not, since every CI service sets that, also where nothing was prepared.
STRICT_ENV = "KANIKO_PIPELINE_STRICT"
STRICT = os.environ.get(STRICT_ENV, "") == "1"


def missing(message: str) -> NoReturn:
    """What the machine lacks for a test: a failure in strict mode, else a skip that says why."""
    if STRICT:
        pytest.fail(f"{message} ({STRICT_ENV}=1: nothing may be missing)")
    pytest.skip(message)


_CONTROLLER_SNAPSHOT = pytest.StashKey[Snapshot]()
MODULE_ORDER = Path(__file__).with_name("module_order.txt")


def slowest_first() -> list[str]:
    """The modules of tests/module_order.txt, slowest first."""
    lines = (line.strip() for line in MODULE_ORDER.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest modules first (a stable sort: tests keep their order inside a module). With
    `--dist loadfile --no-loadscope-reorder` (`invoke test`) xdist hands modules out in this order, so
    the longest ones start at once instead of one of them starting last while the other worker idles."""
    rank = {name: number for number, name in enumerate(slowest_first())}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def _podman_leftovers_reported(left: list[str]) -> list[str]:
    """The leftovers that fail the session: podman's are only a warning where several sessions share
    podman's storage (KANIKO_PIPELINE_TEST_SHARED_PODMAN=1), since they may be another session's."""
    if os.environ.get("KANIKO_PIPELINE_TEST_SHARED_PODMAN") == "1":
        shared = [item for item in left if item.startswith("podman ")]
        if shared:
            warnings.warn("podman storage changed during the session:\n" + "\n".join(shared), stacklevel=1)
        left = [item for item in left if not item.startswith("podman ")]
    return left


def _xdist_worker() -> bool:
    return "PYTEST_XDIST_WORKER" in os.environ


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind() -> Iterator[None]:
    """Fails the session (an error at teardown) if the tests leave processes, podman containers or
    podman images behind. Set up before every other session fixture, so it is torn down after them.

    Processes are matched exactly (a token in their environment). Podman's storage is the machine's:
    where several test sessions share it at once, KANIKO_PIPELINE_TEST_SHARED_PODMAN=1 reports new
    images and containers as a warning instead, since they may be another session's. Under
    pytest-xdist each worker checks its own processes, and the controller checks podman once, when
    every worker is done (a worker would see the others' images still in use).
    """
    snapshot = Snapshot.take(podman=not _xdist_worker())
    yield
    left = _podman_leftovers_reported(snapshot.leftovers())
    if left:
        pytest.fail("the tests left these behind:\n" + "\n".join(left), pytrace=False)


def pytest_sessionstart(session: pytest.Session) -> None:
    """The xdist controller's podman snapshot (it runs no test and no fixture itself)."""
    if session.config.pluginmanager.has_plugin("dsession") and not _xdist_worker():
        session.config.stash[_CONTROLLER_SNAPSHOT] = Snapshot.take(processes=False)


def pytest_sessionfinish(session: pytest.Session) -> None:
    snapshot = session.config.stash.get(_CONTROLLER_SNAPSHOT, None)
    if snapshot is None:
        return
    left = _podman_leftovers_reported(snapshot.leftovers())
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("the tests left these behind:\n" + "\n".join(left), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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


@pytest.fixture
def short_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registry requests wait at most 0.1 s between tries (pipeline/registry/retry.py), for tests that
    stop a registry on purpose: the client still tries as often, the release still fails the same way,
    in seconds instead of the minutes a real outage gets."""
    from pipeline.registry.retry import BACKOFF_CAP_VARIABLE

    monkeypatch.setenv(BACKOFF_CAP_VARIABLE, "0.1")


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


# Fixtures from tests/support/, registered here once for every test module (a fixture imported into a
# test module would be a second definition, set up again for that module):
# - fakeexecutor: the fake executor (tests/support/fakekaniko), compiled once;
# - images: podman, the Debian-made nginx base (cached), images built from the Dockerfile, and the Go
#   build cache the fixture fork's builds share;
# - recipeimages: the fixture executor images published to a local registry, for the recipe tests;
# - registries: real registries, the test token server and the fault-injecting proxy;
# - releasefork: the fixture fork a release runs on, and a release's settings with the nginx test image;
# - sigstore_fixtures: the local Sigstore instance, a second one with other keys, node packages and sigstore-js.
from tests.support.fakeexecutor import fake_binary, fake_executor_image  # noqa: E402, F401
from tests.support.images import (  # noqa: E402, F401
    base_image_name,
    go_build_cache,
    go_build_cache_arm64,
    images,
    nginx_base,
    nginx_image,
    podman,
)
from tests.support.recipeimages import published  # noqa: E402, F401
from tests.support.registries import (  # noqa: E402, F401
    fault_proxy,
    fault_proxy_factory,
    registry,
    registry_factory,
    registry_htpasswd,
    token_registry,
)
from tests.support.releasefork import env, fork  # noqa: E402, F401
from tests.support.sigstore_fixtures import (  # noqa: E402, F401
    local_sigstore,
    node_cache,
    other_sigstore,
    sigstore_js,
)
